import fastsum
import six

print(f"fastsum says {fastsum.sum(range(101))}, six {six.__version__}")
