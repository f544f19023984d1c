"""As NVIDIA's copy of laion_clap: its package initialiser loads text tokenizers from the hub."""

raise OSError("laion_clap's __init__ ran: it would load BERT, RoBERTa and BART from the hub")
