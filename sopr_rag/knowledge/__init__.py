"""The component knowledge base (YAML files read by sopr_rag.cards.knowledge); a package so installs ship it."""
