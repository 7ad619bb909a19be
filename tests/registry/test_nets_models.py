"""Network models against torch modules and closed forms, and the notes' worked CNN examples."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

import registry
from registry._sequence import Attention, sinusoidal
from registry.layers import conv_out, stack
from registry.models_conv import _layer_list
from tests.registry.test_components import build, component


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def layers(*specs: object, shape: tuple[int, ...]) -> tuple[nn.Sequential, tuple[int, ...]]:
    return stack(_layer_list(list(specs)), shape)


# -- worked examples (004:1028-1226; catalog E14-E17) ----------------------------------------


def test_vertical_edge_filter_gives_the_corrected_thirties() -> None:
    image = torch.tensor([[10.0, 10, 10, 0, 0, 0]] * 6).reshape(1, 1, 6, 6)  # Eq. 8.1
    module, shape = layers({"type": "conv", "filters": 1, "kernel": 3, "bias": False}, shape=(1, 6, 6))
    with torch.no_grad():
        module[0].weight.copy_(torch.tensor([[1.0, 0, -1]] * 3).reshape(1, 1, 3, 3))  # Eq. 8.11
    out = module(image)
    assert shape == (1, 4, 4) and out.shape == (1, 1, 4, 4)
    # The notes print rows [0, 10, 10, 0] (Eq. 8.12); the filter sums three rows: 30 (catalog §10).
    assert out[0, 0].tolist() == [[0.0, 30.0, 30.0, 0.0]] * 4


def test_ten_3x3x3_filters_have_280_parameters() -> None:
    module, shape = layers({"type": "conv", "filters": 10, "kernel": 3}, shape=(3, 6, 6))
    assert n_params(module) == 280 == 10 * (3 * 3 * 3 + 1)  # Eq. 8.18


def test_1x1_conv_with_3_filters_maps_4x4x4_to_4x4x3() -> None:
    module, shape = layers({"type": "conv", "filters": 3, "kernel": 1}, shape=(4, 4, 4))
    assert shape == (3, 4, 4) and module(torch.randn(2, 4, 4, 4)).shape == (2, 3, 4, 4)
    # A dense layer along the channel axis at every position (004:1181-1199).
    x = torch.randn(1, 4, 4, 4)
    dense = x.permute(0, 2, 3, 1) @ module[0].weight.view(3, 4).T + module[0].bias
    torch.testing.assert_close(module(x), dense.permute(0, 3, 1, 2))


def test_dense_on_flattened_input_equals_full_size_conv() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 2, 2, 2)
    dense, _ = layers({"type": "dense", "units": 3}, shape=(2, 2, 2))
    conv, shape = layers({"type": "conv_head", "units": [3]}, shape=(2, 2, 2))
    linear, full = dense[0][1], conv[0][0]
    with torch.no_grad():
        full.weight.copy_(linear.weight.view(3, 2, 2, 2))
        full.bias.copy_(linear.bias)
    assert shape == (3, 1, 1)
    torch.testing.assert_close(conv[0][0](x).flatten(1), dense(x))


@pytest.mark.parametrize("n,f,s,p,d", [(28, 5, 1, 2, 1), (6, 3, 1, 0, 1), (7, 3, 2, 1, 1), (9, 3, 1, 0, 2), (224, 7, 2, 3, 1)])
def test_output_size_formula_matches_torch(n: int, f: int, s: int, p: int, d: int) -> None:
    out = nn.Conv2d(1, 1, f, s, p, d)(torch.zeros(1, 1, n, n))
    assert out.shape[-1] == conv_out(n, f, s, p, d)


def test_same_padding_keeps_the_size_and_pools_halve_it() -> None:
    module, shape = layers(
        {"type": "conv", "filters": 32, "kernel": 5, "padding": "same", "activation": "relu"},
        {"type": "max_pool", "kernel": 2},
        {"type": "avg_pool", "kernel": 2},
        {"type": "global_max_pool"},
        shape=(1, 28, 28),
    )
    assert shape == (32,) and module(torch.randn(2, 1, 28, 28)).shape == (2, 32)
    dilated, dshape = layers({"type": "conv", "filters": 2, "kernel": 3, "dilation": 2, "stride": 2}, shape=(1, 9, 9))
    assert dshape == (2, 3, 3) and dilated(torch.randn(1, 1, 9, 9)).shape == (1, 2, 3, 3)


def test_layer_list_errors_name_the_layer() -> None:
    with pytest.raises(ValueError, match="layer 1 .conv.*image inputs"):
        layers({"type": "flatten"}, {"type": "conv", "filters": 2}, shape=(1, 4, 4))
    with pytest.raises(ValidationError):
        component(registry.MODELS, {"type": "cnn", "layers": [{"type": "conv", "filter": 3}]})


def test_residual_identity_and_projection() -> None:
    block = {"type": "conv", "filters": 4, "kernel": 3, "padding": 1}
    same, shape = layers({"type": "residual", "skip": "identity", "layers": [block], "activation": None}, shape=(4, 5, 5))
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(same(x), same[0].body(x) + x)
    down = {"type": "conv", "filters": 8, "kernel": 3, "stride": 2, "padding": 1}
    projected, shape = layers({"type": "residual", "layers": [down]}, shape=(4, 6, 6))
    assert shape == (8, 3, 3) and isinstance(projected[0].shortcut, nn.Conv2d)
    with pytest.raises(ValueError, match="identity skip"):
        layers({"type": "residual", "skip": "identity", "layers": [down]}, shape=(4, 6, 6))


def test_fully_convolutional_head_accepts_the_dense_heads_weights() -> None:
    spec = {"type": "cnn", "layers": [{"type": "conv", "filters": 2, "kernel": 3, "padding": "same"}]}
    dense = build(registry.MODELS, spec, (1, 3, 3), 4)
    conv = build(registry.MODELS, {**spec, "head": "fully_conv"}, (1, 3, 3), 4)
    conv.load_state_dict({k: v.view_as(conv.state_dict()[k]) for k, v in zip(conv.state_dict(), dense.state_dict().values())})
    x = torch.randn(3, 1, 3, 3)
    torch.testing.assert_close(conv(x), dense(x))


# -- presets -----------------------------------------------------------------------------------


def test_vgg19_has_the_books_143667240_parameters() -> None:
    with torch.device("meta"):  # counts without allocating 575 MB
        model = build(registry.MODELS, {"type": "vgg", "blocks": "vgg19", "dense": [4096, 4096]}, (3, 224, 224), 1000)
    assert n_params(model) == 143_667_240  # 003 sec. 6.4


def test_resnet18_has_torchvisions_11689512_parameters() -> None:
    spec = {"type": "resnet", "widths": [64, 128, 256, 512], "blocks": [2, 2, 2, 2], "stem": "imagenet"}
    with torch.device("meta"):
        model = build(registry.MODELS, spec, (3, 224, 224), 1000)
    assert n_params(model) == 11_689_512  # torchvision.models.resnet18().parameters()


# -- mlp: norms and skips --------------------------------------------------------------------------


def test_mlp_identity_skip_is_h_plus_phi_of_wh() -> None:
    model = build(registry.MODELS, {"type": "mlp", "hidden": [4, 4], "skip": "identity", "activation": "tanh"}, (3,), 2)
    x = torch.randn(5, 3)
    h1 = torch.tanh(model.body[0][0](x))
    block = model.body[1].body[0]
    h2 = torch.tanh(block(h1)) + h1  # 000:806
    torch.testing.assert_close(model(x), model.head(h2))
    with pytest.raises(ValidationError, match="equal hidden widths"):
        component(registry.MODELS, {"type": "mlp", "hidden": [4, 3], "skip": "identity"})
    projected = build(registry.MODELS, {"type": "mlp", "hidden": [4, 3], "skip": "projection"}, (3,), 2)
    assert isinstance(projected.body[1].shortcut, nn.Linear) and projected.body[1].shortcut.bias is None


@pytest.mark.parametrize("stats", ["running", "last_batch"])
def test_batch_norm_test_time_statistics(stats: str) -> None:
    torch.manual_seed(0)
    model = build(registry.MODELS, {"type": "mlp", "hidden": [3], "norm": "batch", "bn_stats": stats}, (2,), 1)
    norm = model.body[1]
    first, last = torch.randn(8, 2), torch.randn(8, 2) * 3 + 1
    model.train()
    model(first)
    model(last)
    z_first, z_last = model.body[0](first), model.body[0](last)
    if stats == "last_batch":
        mean, var = z_last.mean(0), z_last.var(0)  # running_var uses the unbiased estimate
    else:
        mean = 0.9 * (0.1 * z_first.mean(0)) + 0.1 * z_last.mean(0)
        var = 0.9 * (0.9 + 0.1 * z_first.var(0)) + 0.1 * z_last.var(0)
    torch.testing.assert_close(norm.running_mean, mean.detach())
    torch.testing.assert_close(norm.running_var, var.detach())


def test_group_and_layer_norm_match_torch() -> None:
    model = build(registry.MODELS, {"type": "mlp", "hidden": [4], "norm": "group", "groups": 2}, (3,), 1)
    assert isinstance(model.body[1], nn.GroupNorm) and model.body[1].num_groups == 2
    with pytest.raises(ValidationError, match="divisible"):
        component(registry.MODELS, {"type": "mlp", "hidden": [5], "norm": "group", "groups": 2})


# -- sequence models ---------------------------------------------------------------------------------


def test_rnn_is_the_elman_recurrence() -> None:
    torch.manual_seed(0)
    model = build(registry.MODELS, {"type": "rnn", "hidden": 4}, (5, 3), 2)
    x = torch.randn(2, 5, 3)
    cell = model.recurrent
    h = torch.zeros(2, 4)
    for t in range(5):
        h = torch.tanh(x[:, t] @ cell.weight_ih_l0.T + cell.bias_ih_l0 + h @ cell.weight_hh_l0.T + cell.bias_hh_l0)
    torch.testing.assert_close(model(x), model.head(h))


def test_rnn_toy_parameter_count_matches_the_book() -> None:
    model = build(registry.MODELS, {"type": "rnn", "hidden": 20}, (3, 8), 8)
    # The book's 748 (003 7.2) has one recurrent bias; torch keeps two (b_ih and b_hh).
    assert n_params(model) - 20 == 748


@pytest.mark.parametrize("kind,gates", [("lstm", 4), ("gru", 3)])
def test_stacked_bidirectional_lstm_and_gru_match_torch(kind: str, gates: int) -> None:
    model = build(registry.MODELS, {"type": kind, "hidden": 6, "layers": 2, "bidirectional": True, "readout": "mean"}, (7, 3), 2)
    reference = {"lstm": nn.LSTM, "gru": nn.GRU}[kind](3, 6, num_layers=2, bidirectional=True, batch_first=True)
    reference.load_state_dict(model.recurrent.state_dict())
    x = torch.randn(2, 7, 3)
    torch.testing.assert_close(model(x), model.head(reference(x)[0].mean(1)))
    assert model.recurrent.weight_ih_l0.shape == (gates * 6, 3)


@pytest.mark.parametrize("score", ["dot", "scaled_dot", "general", "additive"])
def test_attention_weights_are_a_softmax_of_the_scores(score: str) -> None:
    attention = Attention(4, score)
    query, keys = torch.randn(3, 4), torch.randn(3, 5, 4)
    context, weights = attention(query, keys)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    if score in ("dot", "scaled_dot"):
        expected = torch.softmax((keys @ query.unsqueeze(-1)).squeeze(-1) / (2.0 if score == "scaled_dot" else 1.0), -1)
        torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(context, (weights.unsqueeze(-1) * keys).sum(1))


def test_seq2seq_emits_a_sequence_for_sequence_targets() -> None:
    model = build(registry.MODELS, {"type": "seq2seq", "hidden": 8}, (6, 3), 18)
    out = model(torch.randn(2, 6, 3))
    assert out.shape == (2, 6, 3) and model.last_weights.shape == (2, 6, 6)
    classifier = build(registry.MODELS, "seq2seq", (6, 3), 4)
    assert classifier(torch.randn(2, 6, 3)).shape == (2, 4)


def test_transformer_block_has_the_books_parameter_count() -> None:
    model = build(registry.MODELS, {"type": "transformer", "d_model": 512, "heads": 8, "ffn": 2048, "layers": 1}, (4, 512), 2)
    block = model.encoder.layers[0]
    norms = sum(n_params(m) for m in block.modules() if isinstance(m, nn.LayerNorm))
    assert n_params(block) - norms == 3_150_336  # 003 7.5 counts attention and FFN weights


def test_sinusoidal_positions_follow_the_closed_form() -> None:
    table = sinusoidal(7, 6)
    t, i = 5, 1
    assert table[t, 2 * i].item() == pytest.approx(math.sin(t / 10000 ** (2 * i / 6)), abs=1e-6)
    assert table[t, 2 * i + 1].item() == pytest.approx(math.cos(t / 10000 ** (2 * i / 6)), abs=1e-6)


def test_transformer_encoder_equals_torchs_layers_in_eval() -> None:
    model = build(registry.MODELS, {"type": "transformer", "positional": "sinusoidal", "pooling": "cls"}, (5, 3), 2).eval()
    x = torch.randn(2, 5, 3)
    tokens = torch.cat([model.cls.expand(2, -1, -1), model.embed(x)], 1) + sinusoidal(6, 32)
    for layer in model.encoder.layers:
        tokens = layer(tokens)
    torch.testing.assert_close(model(x), model.head(tokens[:, 0]))


# -- autoencoders and the VAE --------------------------------------------------------------------------


def test_linear_autoencoder_reaches_the_pca_reconstruction_error() -> None:
    torch.manual_seed(0)
    x = torch.randn(200, 5) @ torch.randn(5, 5)
    x = x - x.mean(0)
    model = build(registry.MODELS, {"type": "autoencoder", "hidden": [2], "activation": "identity"}, (5,), 5)
    optimizer = torch.optim.LBFGS(model.parameters(), max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = ((model(x) - x) ** 2).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    _, s, _ = torch.linalg.svd(x, full_matrices=False)
    pca_error = (s[2:] ** 2).sum() / x.numel()  # best rank-2 reconstruction (Eckart-Young)
    assert closure().item() == pytest.approx(pca_error.item(), rel=1e-3)


def test_deep_autoencoder_mirrors_its_encoder() -> None:
    model = build(registry.MODELS, {"type": "autoencoder", "hidden": [16, 4], "output": "sigmoid"}, (1, 4, 4), 16)
    assert [m.out_features for m in model.encoder if isinstance(m, nn.Linear)] == [16, 4]
    assert [m.out_features for m in model.decoder if isinstance(m, nn.Linear)] == [16, 16]
    out = model(torch.randn(3, 1, 4, 4))
    assert out.shape == (3, 1, 4, 4) and bool(((out > 0) & (out < 1)).all())


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_elbo_is_nll_plus_the_gaussian_kl(likelihood: str) -> None:
    from torch.distributions import Bernoulli, Normal, kl_divergence

    torch.manual_seed(0)
    model = build(registry.MODELS, {"type": "vae", "hidden": [8], "latent": 3}, (6,), 6).eval()
    head = build(registry.LOSSES, {"type": "elbo", "likelihood": likelihood})
    x = torch.rand(4, 6)
    outputs = model(x)
    recon, mu, log_var = outputs[:, :6], outputs[:, 6:9], outputs[:, 9:]
    kl = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1)
    if likelihood == "bernoulli":
        nll = -Bernoulli(logits=recon, validate_args=False).log_prob(x).sum(-1)
    else:  # the unit-variance Gaussian NLL without its constant D/2 log(2 pi)
        nll = -Normal(recon, 1.0).log_prob(x).sum(-1) - 3 * math.log(2 * math.pi)
    torch.testing.assert_close(head(outputs, x), (nll + kl).mean())
    assert head.predict(outputs).shape == x.shape


def test_vae_samples_in_training_and_uses_the_mean_in_eval() -> None:
    model = build(registry.MODELS, {"type": "vae", "latent": 2}, (4,), 4)
    x = torch.rand(3, 4)
    assert not torch.equal(model.train()(x), model(x))
    assert torch.equal(model.eval()(x), model(x))
    with pytest.raises(ValidationError):
        component(registry.MODELS, {"type": "vae", "latent": 0})
