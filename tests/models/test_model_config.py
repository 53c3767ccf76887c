"""Configs and the registry: names, overrides, validation, omegaconf compatibility."""

from __future__ import annotations

import dataclasses

import pytest
from omegaconf import OmegaConf

from mme.errors import ConfigError
from mme.models import (
    ClassifierConfig,
    HeadConfig,
    MMEPretrainConfig,
    ViTConfig,
    apply_overrides,
    create_model,
    get_config,
    list_models,
    parse_heads,
)


def test_registry_names_and_sizes():
    names = list_models()
    for size, (width, depth, heads) in {
        "tiny": (192, 4, 3),
        "small": (384, 12, 6),
        "base": (768, 12, 12),
        "large": (1024, 24, 16),
        "huge": (1280, 32, 16),
    }.items():
        classifier = get_config(f"vit_{size}_patch16_224")
        pretrain = get_config(f"mme_vit_{size}_patch16_224")
        assert isinstance(classifier, ClassifierConfig) and isinstance(pretrain, MMEPretrainConfig)
        assert (classifier.embed_dim, classifier.depth, classifier.num_heads) == (width, depth, heads)
        assert (pretrain.encoder.embed_dim, pretrain.encoder.depth) == (width, depth)
        assert {f"vit_{size}_patch16_224", f"mme_vit_{size}_patch16_224"} <= set(names)
    assert set(list_models("pretrain")) == {n for n in names if n.startswith("mme_")}
    assert get_config("vit_base_patch16_224").init_scale == 0.001
    assert get_config("vit_base_patch16_224").norm_eps == 1e-6


def test_unknown_name_and_override_name_the_known_ones():
    with pytest.raises(ConfigError) as info:
        create_model("vit_gigantic_patch16_224")
    assert "vit_gigantic_patch16_224" in str(info.value) and "vit_base_patch16_224" in str(info.value)
    with pytest.raises(ConfigError) as info:
        create_model("vit_tiny_patch16_224", dept=2)
    assert "'dept'" in str(info.value) and "depth" in str(info.value)
    with pytest.raises(ConfigError, match="decoder_depht"):
        get_config("mme_vit_tiny_patch16_224", decoder_depht=2)


@pytest.mark.parametrize(
    ("name", "overrides", "fragment"),
    [
        ("vit_tiny_patch16_224", {"num_heads": 5}, "not divisible by num_heads=5"),
        ("vit_tiny_patch16_224", {"img_size": 100}, "img_size=100"),
        ("vit_tiny_patch16_224", {"num_frames": 5}, "num_frames=5"),
        ("vit_tiny_patch16_224", {"depth": "4"}, "depth='4'"),
        ("vit_tiny_patch16_224", {"num_classes": -1}, "num_classes=-1"),
        ("vit_tiny_patch16_224", {"drop_path_rate": 1.5}, "drop_path_rate=1.5"),
        ("mme_vit_tiny_patch16_224", {"heads": []}, "at least one"),
        ("mme_vit_tiny_patch16_224", {"heads": [{"name": "hog", "dim": 108}, "flow"]}, "'flow'"),
        ("mme_vit_tiny_patch16_224", {"heads": [{"name": "x", "dim": 4, "activation": "relu"}]}, "'relu'"),
        ("mme_vit_tiny_patch16_224", {"decoder_num_heads": 5}, "decoder_num_heads=5"),
        ("mme_vit_tiny_patch16_224", {"heads": [{"name": "mbh"}]}, "give its dim and activation"),
    ],
)
def test_bad_values_are_config_errors_naming_the_field(name, overrides, fragment):
    with pytest.raises(ConfigError) as info:
        get_config(name, **overrides)
    assert fragment in str(info.value)


def test_pretrain_overrides_route_encoder_fields():
    pixel = {"name": "pixel", "dim": 1536}
    config = get_config("mme_vit_tiny_patch16_224", depth=2, num_frames=8, decoder_depth=2, heads=[pixel])
    assert config.encoder.depth == 2 and config.encoder.num_frames == 8 and config.decoder_depth == 2
    assert config.heads == [HeadConfig("pixel", 1536, "identity")]
    # the registry entry itself is untouched
    assert get_config("mme_vit_tiny_patch16_224").encoder.depth == 4
    nested = get_config("mme_vit_tiny_patch16_224", encoder={"depth": 1})
    assert nested.encoder.depth == 1 and nested.encoder.embed_dim == 192


def test_parse_heads_accepts_dicts_and_objects_but_not_bare_names():
    heads = parse_heads(
        [{"name": "hog", "dim": 108}, {"name": "traj", "dim": 48}, HeadConfig("mbh", 72, "sigmoid")]
    )
    assert heads == [
        HeadConfig("hog", 108, "identity"),
        HeadConfig("traj", 48, "identity"),
        HeadConfig("mbh", 72, "sigmoid"),
    ]
    # widths are the target registry's (mme.objectives.head_specs), not a second table here
    with pytest.raises(ConfigError, match=r"head 'hog' has no width.*head_specs"):
        parse_heads(["hog"])


def test_configs_are_omegaconf_structured_configs():
    schema = OmegaConf.structured(MMEPretrainConfig)
    merged = OmegaConf.merge(
        schema,
        OmegaConf.create(
            {
                "decoder_depth": 2,
                "encoder": {"depth": 6},
                "heads": [{"name": "pixel", "dim": 1536}, {"name": "traj", "dim": 48}],
            }
        ),
    )
    config = OmegaConf.to_object(merged)
    assert isinstance(config, MMEPretrainConfig) and isinstance(config.encoder, ViTConfig)
    assert config.decoder_depth == 2 and config.encoder.depth == 6
    # a head without an activation has none (identity)
    assert config.heads == [HeadConfig("pixel", 1536, "identity"), HeadConfig("traj", 48, "identity")]
    config.validate()
    classifier = OmegaConf.to_object(OmegaConf.structured(ClassifierConfig(num_classes=51)))
    assert classifier == ClassifierConfig(num_classes=51)
    with pytest.raises(Exception, match="depth"):
        OmegaConf.merge(OmegaConf.structured(ViTConfig), {"depth": "deep"})


def test_apply_overrides_accepts_omegaconf_values():
    heads = OmegaConf.create(
        {"heads": [{"name": "hog", "dim": 108}, {"name": "traj", "dim": 48, "activation": "tanh"}]}
    ).heads
    config = apply_overrides(MMEPretrainConfig(), {"heads": heads})
    assert [h.dim for h in config.heads] == [108, 48]
    assert dataclasses.asdict(config)["heads"][1] == {"name": "traj", "dim": 48, "activation": "tanh"}
