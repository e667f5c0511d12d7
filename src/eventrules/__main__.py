"""``python -m eventrules`` runs the command-line interface."""

from eventrules.cli.main import main

if __name__ == "__main__":
    main()
