"""A drop-in for the parts of `http-parser` 0.9.0 that pymesos 0.3.15 uses, built on httptools.

http-parser 0.9.0 does not build on CPython 3.11 and both of its parsers mis-read some TCP
fragmentations of Mesos responses; see README.md beside this package.
"""

__version__ = "0.9.0.post1+mesosgpu"
