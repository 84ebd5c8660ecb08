"""Run the desktop app: ``python main.py [IMAGE]``."""
import sys

from inpaint_gui.app import main

if __name__ == "__main__":
    sys.exit(main())
