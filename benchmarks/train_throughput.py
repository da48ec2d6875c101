"""Generator updates per second: the course's training engine vs a plain hand-written loop.

All train the same standard CNN (SN on every D layer, hinge loss, Adam, n_dis=1, batch 64) on
the embedded digits held as one tensor, in the same process. Measurements are interleaved
(engine block, plain block, engine block, ...) and the median rate of each is compared, so the
load from other processes affects both alike. The plain loop uses torch's default Adam, as one
would write it; the engine is timed with and without its two speed-ups (channels_last weights,
the fused Adam kernel) to show what each adds.

    python benchmarks/train_throughput.py        # notebook 05's default widths and full width
    python benchmarks/train_throughput.py --widths 0.5/0.125 --rounds 9 --threads 2

A width is ``G/D`` (channel multipliers of the generator and discriminator) or one number for
both; notebook 05's default is ``0.5/0.125``, the paper's model is ``1``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from sngan_edu.data.images import load_digits
from sngan_edu.models.standard_cnn import Discriminator, Generator
from sngan_edu.train.config import RunConfig
from sngan_edu.train.trainer import Trainer


def parse_widths(text: str) -> tuple[float, float]:
    """``"0.5/0.125"`` -> (0.5, 0.125); ``"1"`` -> (1.0, 1.0)."""
    parts = text.split("/")
    if len(parts) not in (1, 2):
        raise ValueError(f"--widths entries must look like 0.5/0.125 or 1; got {text!r}")
    return float(parts[0]), float(parts[-1])


def build(widths: tuple[float, float], image_size: int, seed: int = 0):
    torch.manual_seed(seed)
    G = Generator(image_size=image_size, channels=1, width=widths[0])
    D = Discriminator(image_size=image_size, channels=1, width=widths[1], spectral_norm=True)
    return G, D


class PlainLoop:
    """The loop one would write by hand from the paper (hinge loss, n_dis = 1)."""

    def __init__(self, G, D, images: torch.Tensor, batch_size: int, z_dim: int = 128):
        self.G, self.D, self.images, self.bs, self.z_dim = G, D, images, batch_size, z_dim
        self.opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.0, 0.9))
        self.opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.0, 0.9))

    def run(self, steps: int) -> None:
        G, D, bs = self.G, self.D, self.bs
        for _ in range(steps):
            real = self.images[torch.randint(len(self.images), (bs,))]
            with torch.no_grad():
                fake = G(torch.randn(bs, self.z_dim))
            out = D(torch.cat([real, fake]))
            loss_d = F.relu(1 - out[:bs]).mean() + F.relu(1 + out[bs:]).mean()
            self.opt_d.zero_grad()
            loss_d.backward()
            self.opt_d.step()
            loss_g = -D(G(torch.randn(bs, self.z_dim))).mean()
            self.opt_g.zero_grad()
            loss_g.backward()
            self.opt_g.step()
            loss_d.detach().item(), loss_g.detach().item()  # a typical loop logs every step


# name -> (channels_last, translate, fused_adam); notebook 05 trains as "NHWC, per-tensor Adam"
VARIANTS = {
    "engine, NCHW, per-tensor Adam": (False, 0, False),
    "engine, NHWC, per-tensor Adam": (True, 0, False),
    "engine, NHWC, fused Adam": (True, 0, True),
    "engine, NHWC, fused Adam, translate=1": (True, 1, True),
}


def measure(
    widths: tuple[float, float], image_size: int, block: int, rounds: int
) -> dict[str, float]:
    """Median generator updates/s of each engine variant and of the plain loop, measured
    interleaved in rotating order."""
    data = load_digits(image_size)
    loops = {}
    for name, (channels_last, translate, fused_adam) in VARIANTS.items():
        config = RunConfig(steps=10**9, batch_size=64, setting="resnet", n_dis=1, loss="hinge",
                           regularizer="sn", device="cpu", progress=False, log_every=50,
                           channels_last=channels_last, translate=translate,
                           fused_adam=fused_adam, g_ema=None, out_dir=None, cpu_threads=None)
        trainer = Trainer(*build(widths, image_size), data.sample, config)
        loops[name] = lambda n, t=trainer: t.fit(t.step + n)
    plain = PlainLoop(*build(widths, image_size), data.images, 64)
    loops["plain"] = plain.run
    for run in loops.values():
        run(2)  # warm-up (allocator, oneDNN kernels)
    names = list(loops)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            loops[name](block)
            rates[name].append(block / (time.perf_counter() - start))
    return {name: statistics.median(values) for name, values in rates.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", nargs="+", default=["0.5/0.125", "1"],
                        help="G/D channel multipliers, or one number for both")
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"standard CNN, digits {args.image_size}x{args.image_size}, batch 64, SN, hinge, "
          f"n_dis=1, {args.threads} thread(s), {args.rounds} interleaved rounds (medians)")
    for text in args.widths:
        widths = parse_widths(text)
        block = 30 if max(widths) <= 0.5 else 4
        rate = measure(widths, args.image_size, block, args.rounds)
        plain = rate["plain"]
        print(f"width G/D {widths[0]:g}/{widths[1]:g}: plain loop {plain:6.2f} G-updates/s")
        for name in VARIANTS:
            print(f"  {name:38s} {rate[name]:6.2f} G-updates/s, ratio to plain "
                  f"{rate[name] / plain:4.2f}", flush=True)


if __name__ == "__main__":
    main()
