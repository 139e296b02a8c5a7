#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* sum(iterable of ints) in C: the smallest extension that needs gcc and Python.h. */
static PyObject *fastsum_sum(PyObject *self, PyObject *arg)
{
    PyObject *iter = PyObject_GetIter(arg), *item;
    long long total = 0;
    if (iter == NULL)
        return NULL;
    while ((item = PyIter_Next(iter)) != NULL) {
        total += PyLong_AsLongLong(item);
        Py_DECREF(item);
    }
    Py_DECREF(iter);
    if (PyErr_Occurred())
        return NULL;
    return PyLong_FromLongLong(total);
}

static PyMethodDef methods[] = {
    {"sum", fastsum_sum, METH_O, "Sum an iterable of integers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "fastsum", NULL, -1, methods};

PyMODINIT_FUNC PyInit_fastsum(void)
{
    return PyModule_Create(&module);
}
