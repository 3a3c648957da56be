from setuptools import setup

setup(cffi_modules=["native/build_ring.py:ffi"])
