"""The Keras appendix: Keras 3's SpectralNormalization (torch backend) against independent math.

References never come from the code under test: sigma is an SVD, power iteration is written out
here (Keras's order from ``vector_u``, torch's order from the seeded draws of ``u``, ``v``), and
the paper's gradient is autograd of ``W / sigma(W)``. The notebook's stored numbers are read with
nbformat and recomputed from the notebook's own weight, input and starting vector.
Keras's own float64 arithmetic is not float64 throughout (``keras.ops.minimum(x, 1e7)`` in its
``normalize`` returns float32), so Keras layers are tested in float32, as the notebook uses them,
against float64 references. Tests that need Keras skip only when Keras is not installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from sngan_edu import sn
from sngan_edu.course.keras_bridge import INSTALL_HINT, KerasUnavailable, require_keras

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "appendix_keras_spectral_normalization.ipynb"
# Power iterations torch and sngan_edu run when SN is attached: 15 warm-up iterations, plus one
# when register_parametrization calls the parametrization (training mode) to check its output.
TORCH_ATTACH = 16


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    return require_keras()  # fails loudly (not a skip) if Keras runs on another backend


# ------------------------------------------------------------------ independent references


def svd_sigma(matrix: torch.Tensor) -> float:
    return float(torch.linalg.svdvals(matrix.detach().double())[0])


def keras_order_power_iteration(kernel: torch.Tensor, u0: torch.Tensor, n: int):
    """Plain power iteration on an (in, out) kernel from a (1, out) u, in Keras's order.

    Returns the estimates v K u^T after 1..n steps and the final u (float64).
    """
    K, u = kernel.detach().double(), u0.detach().double()
    estimates = []
    for _ in range(n):
        v = F.normalize(u @ K.T, dim=1)
        u = F.normalize(v @ K, dim=1)
        estimates.append(float(v @ K @ u.T))
    return estimates, u


def torch_order_state(weight: torch.Tensor, seed: int, n: int):
    """u, v (float64) after n steps u <- Wv/|Wv|, v <- W^T u/|W^T u| from seeded draws."""
    torch.manual_seed(seed)
    u = F.normalize(torch.randn(weight.shape[0], dtype=weight.dtype), dim=0).double()
    v = F.normalize(torch.randn(weight.shape[1], dtype=weight.dtype), dim=0).double()
    W = weight.detach().double()
    for _ in range(n):
        u = F.normalize(W @ v, dim=0)
        v = F.normalize(W.T @ u, dim=0)
    return u, v


F32 = {"rtol": 1e-5, "atol": 1e-6}  # float32 results against float64 references


def score(y: torch.Tensor) -> torch.Tensor:
    return y.tanh().sum(dim=1).mean()


def paper_gradient(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Autograd of score(x (W / sigma(W))^T) with the exact sigma (SVD), float64."""
    W = weight.detach().double().clone().requires_grad_()
    (grad,) = torch.autograd.grad(score(x.double() @ (W / torch.linalg.svdvals(W)[0]).T), W)
    return grad


def plain_gradient(weight: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Autograd of score(x W^T): no normalization in the graph, float64."""
    W = weight.detach().double().clone().requires_grad_()
    (grad,) = torch.autograd.grad(score(x.double() @ W.T), W)
    return grad


# ------------------------------------------------------------------ building the layers


def keras_sn(keras, kernel: torch.Tensor, u0: torch.Tensor | None = None, power_iterations=1):
    dtype = str(kernel.dtype).removeprefix("torch.")
    layer = keras.layers.SpectralNormalization(
        keras.layers.Dense(kernel.shape[1], dtype=dtype),
        power_iterations=power_iterations,
        dtype=dtype,
    )
    layer.build((None, kernel.shape[0]))
    layer.kernel.assign(kernel)
    if u0 is not None:
        layer.vector_u.assign(u0)
    return layer


def kernel_of(layer) -> torch.Tensor:
    return layer.kernel.value.detach().clone()


def torch_sn(attach, weight: torch.Tensor, seed: int = 1) -> nn.Linear:
    layer = nn.Linear(weight.shape[1], weight.shape[0], dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.zero_()
    torch.manual_seed(seed)
    return attach(layer)


def random_kernel(seed: int, shape=(16, 8), dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    kernel = torch.randn(shape, generator=gen, dtype=dtype) / shape[0] ** 0.5
    u0 = 0.02 * torch.randn((1, shape[1]), generator=gen, dtype=dtype)
    x = torch.randn((4, shape[0]), generator=gen, dtype=dtype)
    return kernel, u0, x


# ------------------------------------------------------------------ the install guard


def test_require_keras_without_keras_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras -> ImportError
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    with pytest.raises(KerasUnavailable) as info:
        require_keras()
    assert isinstance(info.value, ImportError)
    assert 'pip install "sngan-edu[keras]"' in str(info.value)
    assert info.value.__suppress_context__  # no chained "During handling..." traceback
    assert os.environ["KERAS_BACKEND"] == "torch"
    rendered = info.value._render_traceback_()  # what Jupyter shows instead of a traceback
    assert len(rendered) == 1 and rendered[0].startswith("KerasUnavailable: ")
    assert INSTALL_HINT in rendered[0]


def test_require_keras_refuses_another_backend(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(KerasUnavailable, match="KERAS_BACKEND='jax'"):
        require_keras()


def test_require_keras_refuses_keras_2(monkeypatch):
    fake = types.ModuleType("keras")
    fake.__version__ = "2.15.0"
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(KerasUnavailable, match="found Keras 2.15.0"):
        require_keras()


def test_require_keras_refuses_keras_already_running_elsewhere(monkeypatch):
    fake = types.ModuleType("keras")
    fake.__version__ = "3.5.0"
    fake.backend = types.SimpleNamespace(backend=lambda: "tensorflow")
    monkeypatch.setitem(sys.modules, "keras", fake)
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(KerasUnavailable, match="already imported on the 'tensorflow'"):
        require_keras()


def test_require_keras_returns_keras_on_torch(keras):
    assert require_keras() is keras
    assert keras.backend.backend() == "torch"
    assert int(keras.__version__.split(".")[0]) >= 3


def test_notebook_first_cell_stops_cleanly_without_keras():
    from nbclient import NotebookClient

    first = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells  # after the install guard
                 if c.cell_type == "code" and "install-guard" not in c.metadata.get("tags", []))
    assert "require_keras()" in first.source
    hide = "import os, sys\nsys.modules['keras'] = None\nos.environ.pop('KERAS_BACKEND', None)"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(hide), nbformat.v4.new_code_cell(first.source)]
    )
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    outputs = nb.cells[1].outputs
    assert [o.output_type for o in outputs] == ["error"]  # nothing ran after the guard
    assert outputs[0].ename == "KerasUnavailable"
    shown = "\n".join(outputs[0].traceback)
    assert len(outputs[0].traceback) == 1 and "Traceback" not in shown
    assert 'pip install "sngan-edu[keras]"' in shown


# ------------------------------------------------------------------ Keras's layer, as read


def test_vector_u_is_a_truncated_normal_row_vector_with_std_002(keras):
    keras.utils.set_random_seed(0)
    layer = keras.layers.SpectralNormalization(keras.layers.Dense(4096))
    layer.build((None, 2))
    u = layer.vector_u.value.detach().double()
    assert tuple(u.shape) == (1, 4096)
    assert not layer.vector_u.trainable
    # N(0, 0.02^2) truncated at 2 std: |u| <= 0.04, std 0.02 * 0.8796 = 0.01759.
    assert float(u.abs().max()) <= 0.04 * (1 + 1e-6)
    assert abs(float(u.std()) - 0.01759) < 0.0008
    assert abs(float(u.mean())) < 0.001


def test_training_call_assigns_the_normalized_kernel_to_the_trainable_variable(keras):
    kernel, u0, x = random_kernel(0)
    layer = keras_sn(keras, kernel, u0)
    assert layer.kernel is layer.layer.kernel  # the wrapper holds the Dense's own variable
    assert any(w is layer.kernel for w in layer.trainable_weights)
    y = layer(x, training=True)
    (s1,), u1 = keras_order_power_iteration(kernel, u0, 1)
    torch.testing.assert_close(kernel_of(layer).double(), kernel.double() / s1, **F32)
    torch.testing.assert_close(layer.vector_u.value.detach().double(), u1, **F32)
    torch.testing.assert_close(y.detach().double(), x.double() @ (kernel.double() / s1), **F32)


def test_stored_kernel_after_k_calls_is_the_kernel_over_the_k_step_estimate(keras):
    kernel, u0, x = random_kernel(1)
    layer = keras_sn(keras, kernel, u0)
    estimates, _ = keras_order_power_iteration(kernel, u0, 40)
    stored = []
    with torch.no_grad():
        for k in range(1, 41):
            layer(x, training=True)
            stored.append(svd_sigma(kernel_of(layer)))
            assert stored[-1] == pytest.approx(svd_sigma(kernel) / estimates[k - 1], rel=1e-5)
    assert stored[0] > 1.05  # the first call leaves sigma well above 1
    # The power-iteration estimate never exceeds sigma and never decreases, so the stored
    # kernel's sigma falls monotonically towards 1 and never below it.
    assert all(later <= earlier + 1e-5 for earlier, later in zip(stored, stored[1:], strict=False))
    assert all(s >= 1 - 1e-5 for s in stored)
    assert stored[-1] < 1 + 0.1 * (stored[0] - 1)


def test_inference_calls_use_the_kernel_as_it_stands(keras):
    kernel, u0, x = random_kernel(2)
    layer = keras_sn(keras, kernel, u0)
    torch.testing.assert_close(layer(x).detach(), x @ kernel)  # default: training=False
    assert torch.equal(kernel_of(layer), kernel)
    assert svd_sigma(kernel) > 1.2  # ... which is not normalized
    assert torch.equal(layer.vector_u.value.detach(), u0)
    layer(x, training=True)
    stepped = kernel_of(layer) + 0.1 * torch.randn(kernel.shape, dtype=kernel.dtype)
    layer.kernel.assign(stepped)  # what an optimizer step does
    u_before = layer.vector_u.value.detach().clone()
    torch.testing.assert_close(layer(x, training=False).detach(), x @ stepped)
    assert torch.equal(kernel_of(layer), stepped)
    assert torch.equal(layer.vector_u.value.detach(), u_before)


def test_keras_gradient_lacks_the_sigma_term_of_equation_12(keras):
    kernel, u0, x = random_kernel(3)
    layer = keras_sn(keras, kernel, u0)
    with torch.no_grad():
        for _ in range(100):
            layer(x, training=True)
    K100 = kernel_of(layer)
    score(layer(x, training=True)).backward()
    grad_keras = layer.kernel.value.grad.T
    W_used = kernel_of(layer).T

    G = plain_gradient(W_used, x)
    torch.testing.assert_close(grad_keras.double(), G, **F32)

    W = K100.T.double()
    grad_paper = paper_gradient(W, x)
    U, S, Vh = torch.linalg.svd(W)
    W_sn = W / S[0]
    lam = (G * W_sn).sum()
    assert float((grad_keras - grad_paper).norm() / grad_paper.norm()) > 0.01
    # Equation (12): paper = (G - <G, W_SN> u1 v1^T) / sigma, and sigma(K100) = 1 here.
    assert svd_sigma(K100) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(
        grad_keras.double() - grad_paper, lam * torch.outer(U[:, 0], Vh[0]), **F32
    )
    assert abs(float((grad_paper * W_sn).sum())) < 1e-10  # orthogonal to W
    assert abs(float((grad_keras.double() * W_sn).sum()) - float(lam)) < 1e-5

    for attach in (sn.spectral_norm, parametrizations.spectral_norm):
        torch_layer = torch_sn(attach, K100.T)
        sn.refresh_power_iteration(torch_layer, n_iters=300)
        score(torch_layer(x)).backward()
        grad = torch_layer.parametrizations.weight.original.grad.double()
        torch.testing.assert_close(grad, grad_paper, **F32)


def test_keras_torch_and_sngan_edu_agree_with_svd_after_enough_calls(keras):
    kernel, u0, x = random_kernel(4)
    W = kernel.T.contiguous()
    layers = {
        "keras": keras_sn(keras, kernel, u0),
        "torch": torch_sn(parametrizations.spectral_norm, W),
        "sngan_edu": torch_sn(sn.spectral_norm, W),
    }
    with torch.no_grad():
        for _ in range(100):
            outputs = {
                name: layer(x, training=True) if name == "keras" else layer(x)
                for name, layer in layers.items()
            }
        keras_estimate = svd_sigma(W) / svd_sigma(kernel_of(layers["keras"]))
    assert keras_estimate == pytest.approx(svd_sigma(W), rel=1e-4)
    for name in ("torch", "sngan_edu"):
        assert sn.running_sigma(layers[name]) == pytest.approx(svd_sigma(W), rel=1e-4)
        torch.testing.assert_close(outputs[name], outputs["keras"], rtol=1e-4, atol=1e-5)


def test_a_keras_model_normalizes_only_when_training(keras):
    keras.utils.set_random_seed(5)
    disc = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.SpectralNormalization(keras.layers.Dense(8)),
            keras.layers.Dense(1),
        ]
    )
    layer = disc.layers[0]
    kernel, u0 = kernel_of(layer), layer.vector_u.value.detach().clone()
    x = torch.randn(4, 16)
    disc(x)
    assert torch.equal(kernel_of(layer), kernel)
    disc.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0), loss="mse")
    disc.fit(x.numpy(), torch.zeros(4, 1).numpy(), batch_size=4, epochs=1, verbose=0)
    estimates, _ = keras_order_power_iteration(kernel, u0, 2)
    torch.testing.assert_close(kernel_of(layer).double(), kernel.double() / estimates[0])
    disc(x, training=True)
    torch.testing.assert_close(kernel_of(layer).double(), kernel.double() / estimates[1])


# ------------------------------------------------------------------ the notebook's stored numbers

SNAPSHOT = """
import sys
import nbformat, torch
nb = nbformat.read(sys.argv[1], as_version=4)
env = {}
for cell in nb.cells:  # plain Python: the install guard (a %pip magic) is left out
    if cell.cell_type == "code" and "install-guard" not in cell.metadata.get("tags", []):
        exec(compile(cell.source, "<notebook cell>", "exec"), env)
        if "x = torch.randn" in cell.source:
            break
torch.save({"K": env["K"], "u0": env["u0"], "x": env["x"]}, sys.argv[2])
"""


@pytest.fixture(scope="module")
def notebook_state(keras, tmp_path_factory):
    """The notebook's kernel K, Keras's starting u0 and the input x, from its own cells."""
    out = tmp_path_factory.mktemp("keras_appendix") / "state.pt"
    env = {**os.environ, "KERAS_BACKEND": "torch", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
    subprocess.run(
        [sys.executable, "-c", SNAPSHOT, str(NOTEBOOK), str(out)],
        cwd=NOTEBOOK.parent,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    state = torch.load(out)
    assert tuple(state["K"].shape) == (16, 8) and tuple(state["u0"].shape) == (1, 8)
    return state


def stored_text(marker: str) -> str:
    """The printed text of the notebook's code cell whose source contains ``marker``."""
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type == "code" and marker in cell.source:
            return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
    raise AssertionError(f"no code cell of the notebook contains {marker!r}")


def numbers_after(text: str, label: str) -> list[float]:
    (line,) = [line for line in text.splitlines() if line.lstrip().startswith(label)]
    return [float(t) for t in re.findall(r"-?\d+\.\d+", line[len(label) + 1 :])]


def close(printed: float, exact: float, decimals: int = 4) -> bool:
    return abs(printed - exact) <= 0.5 * 10**-decimals + 2e-5  # rounding + float32 slack


def test_notebook_comparison_table(notebook_state):
    K, u0 = notebook_state["K"], notebook_state["u0"]
    W, sigma = K.T, svd_sigma(K)
    keras_est, _ = keras_order_power_iteration(K, u0, 50)

    def torch_est(n):
        u, v = torch_order_state(W, seed=1, n=n)
        return float(u @ W.double() @ v)

    text = stored_text('print("            estimate of sigma(W)')
    assert all(close(p, sigma) for p in numbers_after(text, "SVD"))
    expected = {
        "Keras 3": (keras_est[0], keras_est[49]),
        "torch": (torch_est(TORCH_ATTACH + 1), torch_est(TORCH_ATTACH + 50)),
        "sngan_edu": (torch_est(TORCH_ATTACH + 1), torch_est(TORCH_ATTACH + 50)),
    }
    for label, (first, fiftieth) in expected.items():
        printed = numbers_after(text, label)
        assert len(printed) == 4, label
        for p, e in zip(printed, (first, fiftieth, sigma / first, sigma / fiftieth), strict=True):
            assert close(p, e), (label, printed)
    assert expected["torch"][0] < sigma - 0.005  # torch's first estimate is low on this weight
    assert keras_est[0] < 0.85 * sigma  # Keras's first estimate is far too low

    text = stored_text("keras17, torch_once")
    assert close(numbers_after(text, "Keras, power_iterations=17")[-1], keras_est[16])
    assert close(numbers_after(text, "torch, 16 at attach + 1")[-1], torch_est(TORCH_ATTACH + 1))


def test_notebook_stored_kernel_table(notebook_state):
    K, u0 = notebook_state["K"], notebook_state["u0"]
    W, sigma = K.T, svd_sigma(K)
    keras_est, _ = keras_order_power_iteration(K, u0, 40)
    rows = [
        line.split()
        for line in stored_text("stored_sigma, torch_sigma = [], []").splitlines()
        if re.match(r"\s*\d+\s", line)
    ]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 5, 10, 20, 31, 40]
    for k, keras_sigma, by_hand, torch_sigma in ((int(r[0]), *map(float, r[1:])) for r in rows):
        exact = sigma / keras_est[k - 1]
        assert close(keras_sigma, exact) and close(by_hand, exact), k
        u, v = torch_order_state(W, seed=1, n=TORCH_ATTACH + k)
        assert close(torch_sigma, sigma / float(u @ W.double() @ v)), k
    assert 1.2 < sigma / keras_est[0] < 1.3  # about 1.23 after one call
    assert abs(sigma / keras_est[30] - 1) < 5e-5  # 1.0000 after 31 calls


def test_notebook_gradient_numbers(notebook_state):
    K, u0, x = notebook_state["K"], notebook_state["u0"], notebook_state["x"]
    keras_est, _ = keras_order_power_iteration(K, u0, 51)
    K50, K51 = K.double() / keras_est[49], K.double() / keras_est[50]
    G = plain_gradient(K51.T, x)  # Keras's gradient: the plain one at the kernel it used
    grad_paper = paper_gradient(K50.T, x)
    W_sn = K50.T / svd_sigma(K50)
    relative = float((G - grad_paper).norm() / grad_paper.norm())
    lam = float((G * W_sn).sum())

    text = stored_text("sigma_term = lam")
    (percent,) = re.findall(r"(\d+\.\d)%", text)
    assert abs(float(percent) / 100 - relative) <= 0.0005 + 1e-5
    assert close(numbers_after(text, "<G, W_SN>")[0], lam)
    paper_dot, keras_dot = numbers_after(text, "<gradient, W_SN>")
    assert close(paper_dot, 0.0) and close(keras_dot, lam)
    assert relative > 0.05  # a real difference, not rounding


def test_notebook_training_and_inference_table(notebook_state):
    K, u0, x = notebook_state["K"], notebook_state["u0"], notebook_state["x"]
    W32 = K.T  # torch's draws of u, v follow the weight's dtype (float32)
    K, x = K.double(), x.double()
    W, sigma, lr = K.T, svd_sigma(K), 0.05

    # Keras: 50 calls, a 51st with backward, an SGD step on the kernel, a 52nd call.
    keras_est, u51 = keras_order_power_iteration(K, u0, 51)
    K51 = K / keras_est[50]
    K_stepped = K51 - lr * plain_gradient(K51.T, x).T
    (s52,), _ = keras_order_power_iteration(K_stepped, u51, 1)
    keras_column = [sigma, sigma / keras_est[49], svd_sigma(K_stepped), svd_sigma(K_stepped) / s52]

    # sngan_edu: 16 iterations at attach + 50 calls, a 51st with backward (eq. 12 via autograd
    # with u, v fixed), an SGD step on the raw weight, one more call; inference divides by
    # u^T W v.
    def used_sigma(weight, u, v):
        return svd_sigma(weight / float(u @ weight @ v))

    u16, v16 = torch_order_state(W32, seed=1, n=TORCH_ATTACH)
    u66, v66 = torch_order_state(W32, seed=1, n=TORCH_ATTACH + 50)
    u67, v67 = torch_order_state(W32, seed=1, n=TORCH_ATTACH + 51)
    W_raw = W.clone().requires_grad_()
    (grad,) = torch.autograd.grad(score(x @ (W_raw / (u67 @ W_raw @ v67)).T), W_raw)
    W_stepped = W - lr * grad
    u68 = F.normalize(W_stepped @ v67, dim=0)
    v68 = F.normalize(W_stepped.T @ u68, dim=0)
    torch_column = [
        used_sigma(W, u16, v16),
        used_sigma(W, u66, v66),
        used_sigma(W_stepped, u67, v67),
        used_sigma(W_stepped, u68, v68),
    ]

    text = stored_text("def record(label)")
    labels = [
        "before any training call",
        "after 50 training calls",
        "after one SGD step",
        "after one more training call",
    ]
    for label, keras_sigma, torch_sigma in zip(labels, keras_column, torch_column, strict=True):
        printed = numbers_after(text, label)
        assert close(printed[0], keras_sigma) and close(printed[1], torch_sigma), label
    assert keras_column[0] > 1.5 and torch_column[0] < 1.02  # Keras starts unnormalized


def test_notebook_prints_no_failed_check():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    texts = [
        "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        for cell in nb.cells
        if cell.cell_type == "code"
    ]
    assert all(
        cell.cell_type != "code" or cell.outputs or "def " in cell.source
        or "install-guard" in cell.metadata.get("tags", [])  # silent where the course is
        for cell in nb.cells
    ), "the notebook has not been executed"
    assert sum(text.count("True") for text in texts) >= 10
    assert not any("False" in text for text in texts)
    assert not any(
        o.output_type == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
