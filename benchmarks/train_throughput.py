"""Generator updates per second: the course's training engine vs a plain hand-written loop.

Both train the same standard CNN (SN on every D layer, hinge loss, Adam, n_dis=1, batch 64) on
the embedded digits held as one tensor, in the same process. Measurements are interleaved
(engine block, plain block, engine block, ...) and the median rate of each is compared, so the
load from other processes affects both alike.

    python benchmarks/train_throughput.py                 # default width 0.125 and full width
    python benchmarks/train_throughput.py --widths 0.125 --rounds 9 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from sngan_edu.data import load_digits
from sngan_edu.models.standard_cnn import Discriminator, Generator
from sngan_edu.train import TrainConfig, Trainer


def build(width: float, image_size: int, seed: int = 0):
    torch.manual_seed(seed)
    G = Generator(image_size=image_size, channels=1, width=width)
    D = Discriminator(image_size=image_size, channels=1, width=width, spectral_norm=True)
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


def measure(width: float, image_size: int, block: int, rounds: int) -> tuple[float, float]:
    """Median generator updates/s of (engine, plain loop), measured interleaved."""
    data = load_digits(image_size)
    G1, D1 = build(width, image_size)
    config = TrainConfig(steps=10**9, batch_size=64, preset="resnet", n_dis=1, loss="hinge",
                         regularizer="sn", device="cpu", progress=False, log_every=50)
    engine = Trainer(G1, D1, data.sample, config)
    G2, D2 = build(width, image_size)
    plain = PlainLoop(G2, D2, data.images, 64)
    engine.fit(engine.step + 2)  # warm-up (allocator, oneDNN kernels)
    plain.run(2)
    rates = {"engine": [], "plain": []}
    for r in range(rounds):
        order = ("engine", "plain") if r % 2 == 0 else ("plain", "engine")
        for name in order:
            start = time.perf_counter()
            if name == "engine":
                engine.fit(engine.step + block)
            else:
                plain.run(block)
            rates[name].append(block / (time.perf_counter() - start))
    return statistics.median(rates["engine"]), statistics.median(rates["plain"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", nargs="+", type=float, default=[0.125, 1.0])
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"standard CNN, digits {args.image_size}x{args.image_size}, batch 64, SN, hinge, "
          f"n_dis=1, {args.threads} thread(s), {args.rounds} interleaved rounds (medians)")
    for width in args.widths:
        block = 30 if width <= 0.25 else 4
        ours, plain = measure(width, args.image_size, block, args.rounds)
        print(f"width {width:<6g} engine {ours:7.2f} G-updates/s   plain loop {plain:7.2f} "
              f"G-updates/s   ratio engine/plain {ours / plain:5.2f}", flush=True)


if __name__ == "__main__":
    main()
