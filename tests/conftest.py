import os
import sys

# The helpers (_ns, _oracle, _scenes) are plain modules beside the tests.
sys.path.insert(0, os.path.dirname(__file__))
