"""Export an EAGLE-3 draft in the format vLLM and SGLang load, and load it back.

    from speculative.export import export_draft, load_exported_draft
    export_draft(draft, "out/draft")                 # config.json + model.safetensors, validated first
    draft = load_exported_draft("out/draft", embed_weight=target_embedding)   # the decode engine's entry
"""

from speculative.export.format import (
    ExportError,
    draft_hf_config,
    expected_shapes,
    export_draft,
    load_exported_draft,
    validate_export,
)

__all__ = ["ExportError", "draft_hf_config", "expected_shapes", "export_draft", "load_exported_draft",
           "validate_export"]
