"""As NVIDIA's copy of laion_clap: this initialiser imports the text models and their data."""

raise OSError("clap_module's __init__ ran: it would read a Git LFS data file")
