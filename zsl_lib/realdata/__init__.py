"""The real benchmarks (CUB, SUN, AWA2): preparation from the official archives, word vectors, datasets."""
