"""`python -m subguard`: the `subguard` command."""

from subguard.cli import main

if __name__ == "__main__":
    main(prog_name="subguard")
