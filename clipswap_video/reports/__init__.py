"""What the inspecting commands compute, for the CLI to print: the faces found
in a photo or video (`faces`), the quality figures of a finished swap
(`evaluate`), the machine's versions, devices and weights (`doctor`), chosen
moments of a video swapped in seconds (`moment`, the `preview` command), and
the side-by-side and contact-sheet pictures (`preview`).

Each module is imported on its own when its command runs (this package
re-exports nothing, so `doctor` does not load the pipeline).
"""

__all__: list[str] = []
