"""Speed of 3D generation and re-rendering against one teacher forward (official 256 configuration).

    python benchmarks/bench_generate.py [--repeats 11] [--threads N] [--keep-freed-memory]

Random weights with the official architecture. The networks' time does not depend on the weights, but
the rasteriser's does: it follows the size of the mesh's triangles. A new D_S starts flat (its last
layer is zero), which a trained model is not, so the table times each step twice: as the random
model produces it ("flat depth") and with the canonical depth and transformation map replaced by a
face-like one ("face depth", the scene of bench_render.py), which is what a trained model renders.
Re-rendering is timed from a new view under the same light (the cached shading is reused, as for a
view slider) and from a new view with a new light (normals and shading are recomputed).
Ratios are to one ``G.synthesis`` at the same batch size in the same run, all timed in turns (one run
of each per round) so that a drift of the CPU's speed cannot skew them. Targets from the issue:
generation <= 2.0x one teacher forward, re-render <= 0.35x.
"""

from __future__ import annotations

import argparse
import dataclasses

import torch
from bench_render import face_like_scene
from common import add_allocator_flag, apply_allocator_flag, interleaved_median_seconds

from liftedgan_hf import LiftedGAN

NEW_LIGHT = [0.5, 0.5, 0.3, 0.2]  # [ambient, diffuse, dx, dy]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=11)
    add_allocator_flag(parser)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    apply_allocator_flag(parser, args)
    if args.threads:
        torch.set_num_threads(args.threads)

    model = LiftedGAN().eval()
    print(f"official 256 configuration, {torch.get_num_threads()} threads, median of {args.repeats} runs\n")
    print("| batch | depth | teacher forward | 3D generation | ratio | re-render | ratio | with new light | ratio |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for batch in (1, 8):
        w = model.style_codes(seed=list(range(batch)))
        face_depth, _, _, _, face_trans_map = face_like_scene(batch, model.image_size)
        flat_output = model.generate(w=w)
        # re-rendered under the same light so that its cached shading belongs to the face depth
        face_output = model.render(
            dataclasses.replace(flat_output, depth=face_depth, trans_map=face_trans_map), light=flat_output.light
        )

        def generate_face_depth(w=w, depth=face_depth, trans_map=face_trans_map):
            # generate()'s steps, with the face-like depth in place of the random network's
            face = dataclasses.replace(model.estimate(w), depth=depth, trans_map=trans_map, normal=None)
            rotation, translation = model.view_from_code(face.view_code)
            light = model.light_from_code(face.light_code)
            return model.render_canonical(face.depth, face.albedo, face.trans_map, rotation, translation, light)

        with torch.no_grad():
            seconds = interleaved_median_seconds(
                {
                    "teacher": lambda w=w: model.generator.synthesis(w, noise_mode="const"),
                    "generate flat": lambda w=w: model.generate(w=w),
                    "generate face": generate_face_depth,
                    "render flat": lambda o=flat_output: model.render(o, yaw=30.0, pitch=5.0),
                    "render face": lambda o=face_output: model.render(o, yaw=30.0, pitch=5.0),
                    "relight flat": lambda o=flat_output: model.render(o, yaw=30.0, pitch=5.0, light=NEW_LIGHT),
                    "relight face": lambda o=face_output: model.render(o, yaw=30.0, pitch=5.0, light=NEW_LIGHT),
                },
                args.repeats,
            )
        teacher = seconds["teacher"]
        for depth_kind in ("flat", "face"):
            generation, rerender = seconds[f"generate {depth_kind}"], seconds[f"render {depth_kind}"]
            relight = seconds[f"relight {depth_kind}"]
            print(
                f"| {batch} | {depth_kind} | {teacher * 1000:.0f} ms | {generation * 1000:.0f} ms "
                f"| {generation / teacher:.2f}x | {rerender * 1000:.0f} ms | {rerender / teacher:.2f}x "
                f"| {relight * 1000:.0f} ms | {relight / teacher:.2f}x |"
            )


if __name__ == "__main__":
    main()
