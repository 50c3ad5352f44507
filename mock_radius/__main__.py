import sys

from mock_radius.cli import main

sys.exit(main())
