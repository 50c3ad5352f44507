# -*- test-case-name: tests.test_cli -*-
import sys

from mock_radius.cli import main

sys.exit(main())
