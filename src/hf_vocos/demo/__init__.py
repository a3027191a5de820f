"""The offline demo: `python -m hf_vocos.demo` (`make demo`)."""
