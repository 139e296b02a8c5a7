import idna
import six

print(six.PY3, idna.encode("xn--caf-dma.example").decode())
