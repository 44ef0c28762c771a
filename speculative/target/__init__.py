"""Target side: the aux-layer convention and target backends (online HF here; offline/TP plug in)."""
