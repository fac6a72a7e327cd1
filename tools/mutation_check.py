"""Mutation check: plants known faults, one at a time, in a copy of the
package and runs the tests that should catch each; a mutant the tests leave
green "survives" and names a blind spot in the suite.

The faults are the mistakes that matter in the five modules where a silent
error ruins every output: the source identity (swap/clipswap.py,
faces/identity.py), alignment (faces/align.py), compositing
(swap/composite.py) and the writer (media/writer.py). Each is a textual
replacement that must match its module exactly once, so a refactor that moves
the code makes the mutant "stale" instead of silently testing nothing.

    python tools/mutation_check.py                  # every mutant
    python tools/mutation_check.py --only align     # names containing "align"
    python tools/mutation_check.py --list
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CLIPSWAP = "clipswap_video/swap/clipswap.py"
IDENTITY = "clipswap_video/faces/identity.py"
ALIGN = "clipswap_video/faces/align.py"
COMPOSITE = "clipswap_video/swap/composite.py"
WRITER = "clipswap_video/media/writer.py"
ATOMIC = "clipswap_video/atomic.py"  # the partial-file rule the writer uses

# The tests that cover each module (pytest node ids, relative to the root).
TESTS = {
    CLIPSWAP: ["tests/test_clipswap_backend.py", "tests/test_clip.py", "tests/test_engine.py"],
    IDENTITY: [
        "tests/test_clipswap_backend.py",
        "tests/test_swap.py",
        "tests/test_faces.py",
        "tests/test_faces_cli.py",
    ],
    ALIGN: [
        "tests/test_faces.py",
        "tests/test_engine.py",
        "tests/test_clipswap_backend.py",
        "tests/test_swap.py",
        "tests/test_paper_reference.py",
    ],
    COMPOSITE: ["tests/test_swap.py", "tests/test_engine.py"],
    WRITER: [
        "tests/test_media.py",
        "tests/test_media_swap.py",
        "tests/test_interrupt.py",
        "tests/test_cli_errors.py",
        "tests/test_existing_output.py",
    ],
    ATOMIC: [
        "tests/test_atomic.py",
        "tests/test_media.py",
        "tests/test_media_swap.py",
        "tests/test_interrupt.py",
        "tests/test_cli_errors.py",
        "tests/test_existing_output.py",
    ],
}


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    old: str
    new: str
    what: str


MUTANTS = [
    # The source identity of the neural swap (reference: RGB, /255, raw output, mean).
    Mutant(
        "clipswap.bgr",
        CLIPSWAP,
        "torch.from_numpy(np.stack(crops))",
        "torch.from_numpy(np.stack(crops)[..., ::-1].copy())",
        "ArcFace fed BGR",
    ),
    Mutant(
        "clipswap.minus_one_to_one",
        CLIPSWAP,
        ".float() / 255.0",
        ".float() / 127.5 - 1.0",
        "ArcFace input in [-1, 1]",
    ),
    Mutant(
        "clipswap.l2_normalised",
        CLIPSWAP,
        "self.z = embeddings.mean(0, keepdim=True)",
        "self.z = torch.nn.functional.normalize(embeddings, dim=1).mean(0, keepdim=True)",
        "identity L2-normalised",
    ),
    Mutant(
        "clipswap.first_photo_only",
        CLIPSWAP,
        "self.z = embeddings.mean(0, keepdim=True)",
        "self.z = embeddings[:1]",
        "only the first source photo",
    ),
    Mutant(
        "clipswap.clip_first_photo",
        CLIPSWAP,
        "clip.mean(0, keepdim=True)",
        "clip[:1]",
        "CLIP half from the first photo only",
    ),
    Mutant(
        "clipswap.clip_before_arcface",
        CLIPSWAP,
        "torch.cat([self.z, clip.mean(0, keepdim=True)], dim=1)",
        "torch.cat([clip.mean(0, keepdim=True), self.z], dim=1)",
        "CLIP half first",
    ),
    Mutant(
        "clipswap.clip_crop_112",
        CLIPSWAP,
        "clip = self.clip.embed(_aligned(identity, 256))",
        "clip = self.clip.embed(_aligned(identity, 112))",
        "CLIP sees the 112 crop",
    ),
    Mutant(
        "clipswap.target_0_1",
        CLIPSWAP,
        "((batch.crops - 127.5) / 127.5)",
        "(batch.crops / 255.0)",
        "generator input in [0, 1]",
    ),
    Mutant(
        "clipswap.output_clipped_early",
        CLIPSWAP,
        "(output.float() + 1) * 127.5",
        "(output.float().clamp(-1, 1) + 1) * 127.5",
        "output clipped before the paste",
    ),
    Mutant(
        "clipswap.output_offset",
        CLIPSWAP,
        "(output.float() + 1) * 127.5",
        "output.float() * 127.5 + 128.0",
        "output off by half a grey level",
    ),
    # The identity of the dlib / classic path.
    Mutant(
        "identity.first_photo_only",
        IDENTITY,
        "unit(np.mean(np.stack(embeddings), axis=0))",
        "unit(embeddings[0])",
        "mean over photos replaced by the first",
    ),
    Mutant(
        "identity.not_renormalised",
        IDENTITY,
        "unit(np.mean(np.stack(embeddings), axis=0))",
        "np.mean(np.stack(embeddings), axis=0)",
        "mean not re-normalised",
    ),
    Mutant(
        "identity.smallest_face",
        IDENTITY,
        "else (lambda face: face.size)",
        "else (lambda face: -face.size)",
        "the smallest face of a photo",
    ),
    Mutant(
        "identity.counted_from_right",
        IDENTITY,
        "key=lambda face: float(face.box[0]))",
        "key=lambda face: -float(face.box[0]))",
        "--source-face counted from the right",
    ),
    Mutant(
        "identity.upscaled_faces_unscaled",
        IDENTITY,
        "scaled_face(face, 0.5)",
        "scaled_face(face, 1.0)",
        "faces of an upscaled photo left at twice the size",
    ),
    # Alignment.
    Mutant(
        "align.eyes_swapped",
        ALIGN,
        "[38.2946, 51.6963],\n        [73.5318, 51.5014],",
        "[73.5318, 51.5014],\n        [38.2946, 51.6963],",
        "template eyes swapped",
    ),
    Mutant(
        "align.no_reflection_fix",
        ALIGN,
        "sign = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])",
        "sign = np.diag([1.0, 1.0])",
        "Umeyama without the reflection fix",
    ),
    Mutant(
        "align.template_128", ALIGN, "size / 112.0", "size / 128.0", "template scaled for 128 px"
    ),
    Mutant(
        "align.scale_per_point",
        ALIGN,
        "variance = (src_centred**2).sum() / len(src)",
        "variance = (src_centred**2).sum()",
        "similarity scale wrong",
    ),
    Mutant(
        "align.corner_pixels",
        ALIGN,
        "[[dst_w / 2, 0, (dst_w - 1) / 2], [0, dst_h / 2, (dst_h - 1) / 2], [0, 0, 1]]",
        "[[dst_w / 2, 0, dst_w / 2], [0, dst_h / 2, dst_h / 2], [0, 0, 1]]",
        "half-pixel convention lost",
    ),
    Mutant("align.nearest", ALIGN, 'mode="bilinear"', 'mode="nearest"', "nearest sampling"),
    Mutant(
        "align.border",
        ALIGN,
        'padding_mode="zeros"',
        'padding_mode="border"',
        "border pixels repeated outside the frame",
    ),
    # Compositing.
    Mutant(
        "composite.mouth_kept_out",
        COMPOSITE,
        "cv2.fillPoly(mask, [np.round(landmarks_68[MOUTH_INNER]).astype(np.int32)], 0)",
        "pass",
        "the inner mouth is not cut out of the mask",
    ),
    Mutant(
        "composite.no_erode",
        COMPOSITE,
        "if settings.mask_erode:",
        "if False:",
        "mask_erode ignored",
    ),
    Mutant(
        "composite.paper_rows",
        COMPOSITE,
        "mask[77:240, 32:224] = 1.0",
        "mask[72:240, 32:224] = 1.0",
        "paper mask rows moved",
    ),
    Mutant(
        "composite.paper_sigma",
        COMPOSITE,
        "gaussian_filter(mask, sigma=7)",
        "gaussian_filter(mask, sigma=5)",
        "paper mask blur",
    ),
    Mutant(
        "composite.colour_std",
        COMPOSITE,
        "lab = (lab - source.mean) / source.std * target.std + target.mean",
        "lab = lab - source.mean + target.mean",
        "colour transfer ignores the spread",
    ),
    Mutant(
        "composite.smoothing_inverted",
        COMPOSITE,
        "weight * previous.mean + (1 - weight) * self.mean",
        "(1 - weight) * previous.mean + weight * self.mean",
        "colour smoothing inverted",
    ),
    Mutant(
        "composite.truncate",
        COMPOSITE,
        "return np.clip(image + 0.5, 0, 255)",
        "return np.clip(image, 0, 255)",
        "multi-band result truncated, not rounded",
    ),
    Mutant(
        "composite.double_alpha",
        COMPOSITE,
        "np.clip(region[..., :3] + (1 - alpha) * target + 0.5, 0, 255)",
        "np.clip(region[..., :3] * alpha + (1 - alpha) * target + 0.5, 0, 255)",
        "premultiplied face multiplied by alpha again",
    ),
    Mutant(
        "align.region_shift_sign",
        ALIGN,
        "region_to_crop[..., :, 2] +=",
        "region_to_crop[..., :, 2] -=",
        "region offset applied the wrong way",
    ),
    Mutant(
        "align.opencv_steps_unrounded",
        ALIGN,
        "half_step = 16",
        "half_step = 0",
        "1/32 px steps truncated instead of rounded (the paper mode's warps)",
    ),
    Mutant(
        "composite.footprint_to_the_edge",
        COMPOSITE,
        "reach = [-1, size]",
        "reach = [0, size]",
        "footprint ends at the crop's edge, not where bilinear sampling does",
    ),
    Mutant(
        "composite.lab_mask",
        COMPOSITE,
        "inside = lab[mask > 0.5]",
        "inside = lab[mask > 0.0]",
        "colour statistics over the feathered edge",
    ),
    # The writer.
    Mutant(
        "writer.no_partial",
        ATOMIC,
        'return path.with_name(f"{path.stem}.partial{path.suffix}")',
        "return path",
        "written in place, not to .partial",
    ),
    Mutant(
        "writer.partial_kept",
        WRITER,
        "self._partial.unlink(missing_ok=True)",
        "pass",
        "a failed job leaves its .partial",
    ),
    Mutant(
        "writer.input_overwritten",
        WRITER,
        "if output.resolve() == input_path.resolve() or (",
        "if False and (",
        "output may be the input",
    ),
    Mutant(
        "writer.time_base",
        WRITER,
        "stream.time_base = video.time_base  # same clock",
        "pass  # same clock",
        "output stream on the encoder's clock",
    ),
    Mutant(
        "writer.rotation",
        WRITER,
        "stream.set_display_matrix(video.display_matrix)",
        "pass",
        "rotation dropped",
    ),
    Mutant(
        "writer.colour_tags",
        WRITER,
        "context.color_primaries, context.color_trc = video.color_primaries, video.color_trc",
        "pass",
        "primaries and transfer dropped",
    ),
    Mutant(
        "writer.sar",
        WRITER,
        "context.sample_aspect_ratio = video.sample_aspect_ratio",
        "pass",
        "sample aspect ratio dropped",
    ),
    Mutant(
        "writer.disclosure",
        WRITER,
        'tags["comment"] = f"{disclosure}; {earlier}" if earlier else disclosure',
        'tags["comment"] = earlier or ""',
        "no disclosure tag",
    ),
    Mutant(
        "writer.encoder_tag",
        WRITER,
        "if key not in _MUXER_OWNED_TAGS}",
        "}",
        "the input's encoder tags copied",
    ),
    Mutant(
        "writer.gop",
        WRITER,
        "picture.pict_type = av.video.frame.PictureType.NONE",
        "pass",
        "input frame types forced on the encoder",
    ),
    Mutant(
        "writer.colour_range",
        WRITER,
        "dst_colorspace=decoded.colorspace,\n        dst_color_range=decoded.color_range,",
        "dst_colorspace=decoded.colorspace,",
        "swapped pixels converted to the wrong range",
    ),
    Mutant(
        "writer.no_flush",
        WRITER,
        "self._container.mux(self._stream.encode(None))",
        "pass",
        "the encoder is not flushed",
    ),
]


def copy_tree(destination: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def run_mutant(mutant: Mutant, copy: Path, timeout: float) -> dict[str, object]:
    module = copy / mutant.path
    original = module.read_text()
    if original.count(mutant.old) != 1:
        return {"name": mutant.name, "result": "stale", "what": mutant.what}
    tests = [test for test in TESTS[mutant.path] if (copy / test.split("::")[0]).exists()]
    module.write_text(original.replace(mutant.old, mutant.new))
    started = time.monotonic()
    try:
        # PYTHONPATH puts the mutated copy before the editable install of the original.
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
            cwd=copy,
            env={**os.environ, "PYTHONPATH": str(copy)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        outcomes = {0: "survived", 1: "killed"}
        result = outcomes.get(done.returncode, f"error (pytest exit {done.returncode})")
        caught_by = next(
            (line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")), ""
        )
    except subprocess.TimeoutExpired:
        result, caught_by = "timeout", ""
    finally:
        module.write_text(original)
    seconds = round(time.monotonic() - started, 1)
    return {
        "name": mutant.name,
        "result": result,
        "what": mutant.what,
        "caught_by": caught_by,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="run the mutants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per mutant")
    args = parser.parse_args()
    chosen = [mutant for mutant in MUTANTS if args.only in mutant.name]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:32} {mutant.what}")
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="clipswap-mutants-") as scratch:
        copy_tree(Path(scratch))
        for mutant in chosen:
            results.append(run_mutant(mutant, Path(scratch), args.timeout))
            row = results[-1]
            print(
                f"{row['result']:9} {row['name']:32} {row.get('seconds', '')!s:>6}s "
                f"{row['what']}  {row.get('caught_by', '')}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    survived = [row["name"] for row in results if row["result"] != "killed"]
    print(f"{len(results) - len(survived)} of {len(results)} killed; not killed: {survived}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
