"""Tiny, randomly initialised Qwen-Image components, built offline.

The `tiny` variant runs the real diffusers Qwen-Image pipelines (text-to-image, img2img and Edit-Plus) with
components a few hundred kilobytes big, so the whole generation path (scheduler, callbacks, cancellation,
seeding, PNG encoding, LoRA hooks) runs on a CPU in well under a second at 64x64 and needs no network, no token
and no GPU. The component shapes mirror diffusers' own test dummies
(`tests/pipelines/qwenimage/test_qwenimage.py`); only the tokenizer is new: diffusers' tests download one from the
Hub, ours is a byte-level BPE built in memory, so nothing is fetched.

The images are noise, by design: this is for smoke tests of a deployment and for unit tests, not for looks.
Heavy imports happen inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Qwen2.5-VL's special tokens, in the order the pipelines' chat templates use them.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
HIDDEN_SIZE = 16  # text encoder hidden size == the transformer's joint_attention_dim
VOCAB_SIZE = 320  # must cover the 256 byte symbols + the special tokens
VAE_Z_DIM = 4


def build_tokenizer() -> Any:
    """A byte-level BPE tokenizer (every byte is one token) with the Qwen special tokens, built in memory."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import Qwen2TokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    backend = Tokenizer(models.BPE(vocab={symbol: i for i, symbol in enumerate(alphabet)}, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens(list(SPECIAL_TOKENS))
    return Qwen2TokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token=None
    )


def build_text_encoder(tokenizer: Any) -> Any:
    """A 2-layer, 16-wide Qwen2.5-VL model (transformers 4.x config names: `rope_scaling`, `rope_theta`)."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": HIDDEN_SIZE,
            "intermediate_size": 16,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": VOCAB_SIZE,
            # mrope sections sum to head_dim / 2 = (16 / 2) / 2 = 4
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": HIDDEN_SIZE,
            "fullatt_block_indexes": [1],
        },
        hidden_size=HIDDEN_SIZE,
        vocab_size=VOCAB_SIZE,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def build_processor(tokenizer: Any) -> Any:
    """The Qwen2-VL processor the Edit pipelines need, without a video processor.

    transformers 4.57 insists on a video processor in `Qwen2VLProcessor.__init__`, and video processors import
    torchvision, which must not be installed next to the CPU torch used for tests (it breaks transformers'
    imports). Edit never processes video, so the class check is skipped. On Modal the real processor is loaded
    from the Qwen-Image-Edit-2509 repository instead, with torchvision installed.
    """
    from transformers import Qwen2VLProcessor
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> type:
            return type(argument)

    return ImageOnlyQwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(), tokenizer=tokenizer, video_processor=None
    )


def build_tiny_components(seed: int = 0, *, with_processor: bool = False) -> dict[str, Any]:
    """Random tiny `transformer`, `vae`, `scheduler`, `text_encoder`, `tokenizer` (+ `processor`).

    The same seed gives the same weights, so two pipelines built with one seed produce identical images.
    """
    import torch
    from diffusers import AutoencoderKLQwenImage, FlowMatchEulerDiscreteScheduler, QwenImageTransformer2DModel

    torch.manual_seed(seed)
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=4 * VAE_Z_DIM,  # latents are packed 2x2
        out_channels=VAE_Z_DIM,
        num_layers=2,
        attention_head_dim=16,
        num_attention_heads=3,
        joint_attention_dim=HIDDEN_SIZE,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),  # sums to attention_head_dim
    )
    torch.manual_seed(seed)
    vae = AutoencoderKLQwenImage(
        base_dim=VAE_Z_DIM * 6,
        z_dim=VAE_Z_DIM,
        dim_mult=[1, 2, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True],
        latents_mean=[0.0] * VAE_Z_DIM,
        latents_std=[1.0] * VAE_Z_DIM,
    )
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    text_encoder = build_text_encoder(tokenizer)
    components: dict[str, Any] = {
        "transformer": transformer.eval(),
        "vae": vae.eval(),
        "scheduler": FlowMatchEulerDiscreteScheduler(),
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
    }
    if with_processor:
        components["processor"] = build_processor(tokenizer)
    return components


LORA_TARGETS = ("attn.to_q", "attn.to_k", "attn.to_v", "attn.to_out.0")


def write_tiny_lora(
    path: str | Path, transformer: Any, *, rank: int = 2, seed: int = 0, magnitude: float = 0.5
) -> Path:
    """Write a random LoRA for `transformer` in the diffusers/PEFT key format and return its path.

    Keys look like `transformer.transformer_blocks.0.attn.to_q.lora_A.weight` (shape rank x in_features) and
    `...lora_B.weight` (out_features x rank), exactly what `QwenImagePipeline.lora_state_dict` returns for a
    real Qwen-Image LoRA. Unlike a freshly initialised trainable LoRA, `lora_B` is non-zero here so the
    adapter visibly changes the output.
    """
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for block_index in range(len(transformer.transformer_blocks)):
        for target in LORA_TARGETS:
            module = transformer.get_submodule(f"transformer_blocks.{block_index}.{target}")
            prefix = f"transformer.transformer_blocks.{block_index}.{target}"
            tensors[f"{prefix}.lora_A.weight"] = (
                torch.randn(rank, module.in_features, generator=generator) * magnitude
            )
            tensors[f"{prefix}.lora_B.weight"] = (
                torch.randn(module.out_features, rank, generator=generator) * magnitude
            )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path))
    return path
