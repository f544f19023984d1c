"""What a table's numbers count, said under it in ``tables.md`` and on the report page (the
tables whose columns need more than their headers)."""

from __future__ import annotations

LEGENDS = {
    "compute": "tokens/item counts the tokens generated for every candidate (not the prompts, nor "
               "a verifier's replies) and USD/item what the API calls cost (the verifier's "
               "included), computed or read from the cache alike. s/item (wall) and "
               "GPU-s/item (the same on a GPU, else 0) count only the model calls the cell "
               "computed: 'from cache' is the share it read instead, computed by a cell sharing "
               "them (w-bon reads bon's beams, w-alm-v alm-v's candidates and scores) or by an "
               "earlier run; its seconds are not its cost. Cells of one plan share its seconds.",
    "classification": "Acc: the share of valid items whose top class is the annotators' "
                      "majority, with Wilson's score 95% CI under the expanded intervals (the "
                      "default; the bootstrap's is a point where every item is right, or "
                      "every one wrong), the bootstrap's under --interval percentile. F1 "
                      "(macro, over all the corpus's classes) and UAR: the percentile bootstrap "
                      "95% CI of the items' confusion matrix, narrow over few items where nearly "
                      "all are right (docs/metrics.md). Untied: the items whose top vote is "
                      "not tied ('tied' counts them).",
    "alpha": "W-BoN's mean JS, BC and R² had it weighed its beams by their raw log-likelihood "
             "(Eq. 3 as written, the default), per token (mean) or uniformly: the same beams "
             "and items, so only the weighting differs. Beside mean and uniform, the change "
             "from raw as a difference (that mean minus raw's: a + is worse for JS, better for "
             "BC and R², unlike the strategies table's % where + is always better), * where "
             "its paired bootstrap 95% CI excludes 0 and its paired sign-flip test agrees "
             "(p ≤ 5%; the CI alone under --interval percentile), on 6 items or more. Max "
             "weight: the mixture's largest weight, averaged over the items (1 where one beam "
             "takes all, as BoN; 0.2 where five weigh alike): how far from BoN each choice is.",
    "verifier": "For each cell whose candidates a verifier scored (alm-v, w-alm-v): ties, how "
                "alm-v took candidates sharing the top score (first: the first in beam order; "
                "mean: their mean, verifier_ties); scored, the "
                "valid candidates it gave a score in [0, 1] (unscored: the candidates whose "
                "reply held none); items, those with two scored candidates or more; of them, "
                "top shared: the items whose highest score two candidates or more shared, where "
                "alm-v under first fell back to its likeliest beam (beam order, as bon picks); all "
                "alike: the items whose candidates it scored all the same, where w-alm-v weighed "
                "them evenly. Max weight: where the items weighed their candidates (w-alm-v, "
                "alm-v under mean), the largest weight averaged over the items: 1 where one "
                "candidate took all, 1/3 where three weighed alike (softmax of scores in [0, 1] "
                "stays near it). Commonest scores: its most frequent scores, each with its share "
                "of the scored candidates. A verifier that tells few items' candidates apart "
                "leaves alm-v close to bon whatever it is worth (the ties table: alm-v under "
                "each rule).",
    "ties": "ALM-v's mean JS, BC and R² had it taken the first (in beam order: the likeliest "
            "beam) of the candidates sharing the verifier's top score, or their mean: the same "
            "candidates, scores and items, so only the rule differs, and only on the items "
            "whose top score was shared. Beside mean, its change from first as a difference "
            "(a + is worse for JS, better for BC and R²), * where its paired bootstrap 95% CI "
            "excludes 0 and its paired sign-flip test agrees (p ≤ 5%; the CI alone under "
            "--interval percentile), on 6 items or more.",
    "ambiguity": "Each cell's median of each metric over the valid items of each ambiguity "
                 "level ('–': none there), the numbers the figures plot, with its "
                 "distribution-free 95% CI (the order statistics a Binomial(n, 1/2) gives: no "
                 "resampling; none for a level of fewer than 6 valid items, too few for one). "
                 "A corpus's levels are "
                 "five bins of its items' annotator entropy (bits): equal-width over the range "
                 "observed (width, the default) or equal-count (quantile, --entropy-bins "
                 "quantile); the row above its cells gives each level's range and its number of "
                 "items, valid or not.",
}
