#include "torch_cache.h"

#include <dlfcn.h>
#include <time.h>

#include <atomic>

#include "gem/log.h"
#include "symbols.h"

namespace gem::hook {

namespace {

struct PyObj;  // CPython's PyObject, never looked into

// CPython's PyMethodDef (the same layout in every CPython 3).
struct PyMethodDefC {
  const char* name;
  PyObj* (*meth)(PyObj* self, PyObj* args);
  int flags;
  const char* doc;
};
constexpr int kMethNoArgs = 0x0004;  // METH_NOARGS

// The C API functions used, from the process's global scope. The stable ABI has each of them.
struct Api {
  bool ok = false;
  int (*IsInitialized)() = nullptr;
  int (*IsFinalizing)() = nullptr;  // Py_IsFinalizing (3.13) or _Py_IsFinalizing (3.7-3.12); optional
  int (*GILStateEnsure)() = nullptr;  // returns PyGILState_STATE, an int-sized enum
  void (*GILStateRelease)(int) = nullptr;
  PyObj* (*SysGetObject)(const char*) = nullptr;
  PyObj* (*DictGetItemString)(PyObj*, const char*) = nullptr;
  PyObj* (*GetAttrString)(PyObj*, const char*) = nullptr;
  PyObj* (*CallObject)(PyObj*, PyObj*) = nullptr;
  void (*IncRef)(PyObj*) = nullptr;
  void (*DecRef)(PyObj*) = nullptr;
  void (*ErrClear)() = nullptr;
  // For the atexit registration; optional.
  PyObj* (*ImportModule)(const char*) = nullptr;
  PyObj* (*CFunctionNewEx)(PyMethodDefC*, PyObj*, PyObj*) = nullptr;
  PyObj* (*CallFunctionObjArgs)(PyObj*, ...) = nullptr;
  PyObj* none = nullptr;  // &_Py_NoneStruct
  void* (*SaveThread)() = nullptr;  // PyEval_SaveThread: returns the PyThreadState*
  void (*RestoreThread)(void*) = nullptr;
};

template <typename T>
void find(T* slot, const char* name) {
  *slot = reinterpret_cast<T>(real_dlsym(RTLD_DEFAULT, name));
}

Api load() {
  Api a;
  // PyImport_GetModule is not used; it only marks CPython 3.7, the first whose GIL always exists
  // (before 3.7 a thread of the hook could not take it in a program that never started one).
  if (real_dlsym(RTLD_DEFAULT, "PyImport_GetModule") == nullptr) return a;
  find(&a.IsInitialized, "Py_IsInitialized");
  find(&a.IsFinalizing, "Py_IsFinalizing");
  if (a.IsFinalizing == nullptr) find(&a.IsFinalizing, "_Py_IsFinalizing");
  find(&a.GILStateEnsure, "PyGILState_Ensure");
  find(&a.GILStateRelease, "PyGILState_Release");
  find(&a.SysGetObject, "PySys_GetObject");
  find(&a.DictGetItemString, "PyDict_GetItemString");
  find(&a.GetAttrString, "PyObject_GetAttrString");
  find(&a.CallObject, "PyObject_CallObject");
  find(&a.IncRef, "Py_IncRef");
  find(&a.DecRef, "Py_DecRef");
  find(&a.ErrClear, "PyErr_Clear");
  find(&a.ImportModule, "PyImport_ImportModule");
  find(&a.CFunctionNewEx, "PyCFunction_NewEx");
  find(&a.CallFunctionObjArgs, "PyObject_CallFunctionObjArgs");
  find(&a.SaveThread, "PyEval_SaveThread");
  find(&a.RestoreThread, "PyEval_RestoreThread");
  a.none = static_cast<PyObj*>(real_dlsym(RTLD_DEFAULT, "_Py_NoneStruct"));
  a.ok = a.IsInitialized && a.GILStateEnsure && a.GILStateRelease && a.SysGetObject && a.DictGetItemString &&
         a.GetAttrString && a.CallObject && a.IncRef && a.DecRef && a.ErrClear;
  return a;
}

const Api& api() {
  static const Api a = load();  // on the emptier thread only: dlsym takes the loader's lock
  return a;
}

// Set by the atexit function: the interpreter is finishing, the GIL must not be taken again.
std::atomic<bool> g_exiting{false};
// Set from just before the emptier checks g_exiting until it has released the GIL (Dekker's pair
// with g_exiting, both sequentially consistent): the atexit function waits for it to clear.
std::atomic<bool> g_in_python{false};
bool g_registered = false;  // the atexit function is registered (emptier thread only; kept across fork)
constexpr int kExitWaitMs = 2000;  // the longest the interpreter's exit waits for an emptying

// Runs in the interpreter's atexit, before it starts finalising (CPython stops any other thread
// that takes the GIL from then on). An emptying in progress (or waiting for the GIL) is let finish
// with the GIL released, so the emptier never meets a finalising interpreter.
PyObj* on_python_exit(PyObj*, PyObj*) {
  const Api& a = api();
  g_exiting.store(true);
  if (g_in_python.load() && a.SaveThread != nullptr && a.RestoreThread != nullptr) {
    void* ts = a.SaveThread();
    const timespec ms{0, 1000000};
    for (int i = 0; i < kExitWaitMs && g_in_python.load(); ++i) nanosleep(&ms, nullptr);
    a.RestoreThread(ts);
  }
  a.IncRef(a.none);
  return a.none;
}

PyMethodDefC g_exit_def = {"_gemhook_python_exiting", &on_python_exit, kMethNoArgs, nullptr};

void drop(PyObj* o) {
  if (o != nullptr) api().DecRef(o);
}

// With the GIL held: atexit.register(on_python_exit), once. Without the pieces, or if it fails,
// the finalising check alone guards the GIL.
void register_exit_once() {
  const Api& a = api();
  if (g_registered || !a.ImportModule || !a.CFunctionNewEx || !a.CallFunctionObjArgs || !a.none) return;
  g_registered = true;
  PyObj* fn = a.CFunctionNewEx(&g_exit_def, nullptr, nullptr);
  PyObj* mod = fn != nullptr ? a.ImportModule("atexit") : nullptr;  // built in, never a file
  PyObj* reg = mod != nullptr ? a.GetAttrString(mod, "register") : nullptr;
  PyObj* r = reg != nullptr ? a.CallFunctionObjArgs(reg, fn, static_cast<PyObj*>(nullptr)) : nullptr;
  if (r == nullptr) {
    a.ErrClear();
    LOG_DEBUG("could not register the interpreter's exit with atexit");
  }
  drop(r);
  drop(reg);
  drop(mod);
  drop(fn);
}

bool finishing() {
  const Api& a = api();
  return g_exiting.load() || a.IsInitialized() == 0 || (a.IsFinalizing != nullptr && a.IsFinalizing() != 0);
}

// With the GIL held.
TorchEmpty call(bool (*still_wanted)(void*), void* ctx) {
  const Api& a = api();
  PyObj* modules = a.SysGetObject("modules");                                    // borrowed
  PyObj* torch = modules != nullptr ? a.DictGetItemString(modules, "torch") : nullptr;  // borrowed
  if (torch == nullptr) return TorchEmpty::kNoTorch;
  a.IncRef(torch);  // attribute look-ups run Python code, which could drop it from sys.modules
  PyObj* cuda = a.GetAttrString(torch, "cuda");
  PyObj* fn = cuda != nullptr ? a.GetAttrString(cuda, "empty_cache") : nullptr;
  TorchEmpty out = TorchEmpty::kNoTorch;
  if (fn == nullptr) {
    a.ErrClear();
  } else if (!still_wanted(ctx)) {
    out = TorchEmpty::kDeclined;
  } else if (PyObj* r = a.CallObject(fn, nullptr)) {
    drop(r);
    out = TorchEmpty::kCalled;
  } else {
    a.ErrClear();
    out = TorchEmpty::kRaised;
  }
  drop(fn);
  drop(cuda);
  drop(torch);
  return out;
}

}  // namespace

bool cpython_present() { return api().ok; }

void torch_cache_after_fork() { g_in_python.store(false); }

TorchEmpty empty_torch_cache(bool (*still_wanted)(void*), void* ctx) {
  const Api& a = api();
  if (!a.ok) return TorchEmpty::kNoPython;
  g_in_python.store(true);
  if (finishing()) {
    g_in_python.store(false);
    return TorchEmpty::kNoPython;
  }
  const int st = a.GILStateEnsure();
  TorchEmpty out = TorchEmpty::kNoPython;
  if (!finishing()) {
    register_exit_once();
    out = call(still_wanted, ctx);
  }
  a.GILStateRelease(st);
  g_in_python.store(false);
  return out;
}

}  // namespace gem::hook
