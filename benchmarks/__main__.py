"""`python -m benchmarks ...`. `gpu` is dispatched before typer/rich are imported: the GPU host
may have neither (nor tritonclient, nor numpy<2)."""

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "gpu":
        from benchmarks import gpu

        sys.exit(gpu.main(sys.argv[2:]))
    from benchmarks.cli import app

    app()


if __name__ == "__main__":
    main()
