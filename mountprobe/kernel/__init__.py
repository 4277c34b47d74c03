"""Raw ctypes bindings to the mount-inspection system calls.

One module per syscall family. Every function takes and returns bytes and integers,
raises ``OSError`` with the kernel's errno, and makes no decision about what an
error means: that policy lives in ``mountprobe.strategies``.
"""
