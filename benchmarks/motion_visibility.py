"""Can the demo's tiny ViT see a motion at all? Supervised training from scratch on fresh clips.

Each step draws 16 clips of a blurred-noise texture that translates (4 directions) or rotates /
scales about the frame centre (4 classes: clockwise, counter-clockwise, expand, contract), made
in memory with `grid_sample` (no video files, no flow), and trains the demo's classifier
(ViT-tiny width, 2 blocks, 8 frames at 64 px, bf16) with AdamW. It prints the training accuracy
of the last 100 steps: a motion the model cannot learn to classify with labels is not one it
will learn to predict from context in a pre-training of the same length (docs/data.md).

    python benchmarks/motion_visibility.py --speed 2 --blur 2 --steps 400
    python benchmarks/motion_visibility.py --kind rotate --speed 0.08 --steps 400
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from mme.models import create_model

SIZE, FRAMES, BATCH, CLASSES = 64, 8, 16, 4


def blurred_noise(count: int, size: int, blur: float) -> torch.Tensor:
    """(count, 1, size, size) Gaussian-blurred white noise, unit std per image (periodic borders)."""
    noise = torch.randn(count, 1, size, size)
    width = int(4 * blur) | 1
    kernel = torch.exp(-((torch.arange(width) - width // 2) ** 2) / (2 * blur**2))
    kernel = kernel / kernel.sum()
    pad = (width // 2,) * 4
    noise = F.conv2d(F.pad(noise, pad, mode="circular"), kernel.view(1, 1, 1, width))
    noise = F.conv2d(F.pad(noise, pad, mode="circular"), kernel.view(1, 1, width, 1))
    return noise / noise.std(dim=(2, 3), keepdim=True)


def motion_theta(labels: torch.Tensor, kind: str, speed: float, t: float) -> torch.Tensor:
    """Affine maps (B, 2, 3) from output to texture coordinates at ``t`` frames from the middle;
    the texture is twice the clip's size, so the clip sees its central half."""
    theta = torch.zeros(len(labels), 2, 3)
    if kind == "translate":
        directions = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])[labels]
        theta[:, 0, 0] = theta[:, 1, 1] = 0.5
        theta[:, :, 2] = directions * speed * t / SIZE  # px of the clip -> normalised texture units
        return theta
    sign = torch.tensor([1.0, -1.0, 0.0, 0.0])[labels]
    growth = torch.tensor([0.0, 0.0, 1.0, -1.0])[labels]
    angle = sign * speed * t
    scale = 0.5 / torch.exp(growth * speed * t)
    theta[:, 0, 0] = scale * torch.cos(angle)
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * torch.sin(angle)
    theta[:, 1, 1] = scale * torch.cos(angle)
    return theta


def clips(kind: str, speed: float, blur: float) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.randint(0, CLASSES, (BATCH,))
    texture = blurred_noise(BATCH, 2 * SIZE, blur)
    frames = []
    for t in range(FRAMES):
        grid = F.affine_grid(motion_theta(labels, kind, speed, t - FRAMES / 2), (BATCH, 1, SIZE, SIZE), False)
        frames.append(F.grid_sample(texture, grid, padding_mode="reflection", align_corners=False))
    return 0.5 * torch.stack(frames, dim=2).expand(-1, 3, -1, -1, -1), labels


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", choices=("translate", "rotate"), default="translate")
    parser.add_argument("--speed", type=float, default=2.0, help="px / frame (translate) or rad / frame")
    parser.add_argument("--blur", type=float, default=2.0, help="texture blur sigma, px")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    model = create_model(
        "vit_tiny_patch16_224", num_classes=CLASSES, num_frames=FRAMES, img_size=SIZE, depth=2
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    hits: list[float] = []
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        clip, labels = clips(args.kind, args.speed, args.blur)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(clip)
        loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        hits.append((logits.argmax(1) == labels).float().mean().item())
        if step % 100 == 0:
            recent = sum(hits[-100:]) / len(hits[-100:])
            print(
                f"step {step}: loss {loss.item():.3f}, train accuracy (last 100 steps) {recent:.2f}, "
                f"{time.perf_counter() - start:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
