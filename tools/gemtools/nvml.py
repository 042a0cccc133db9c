"""A few NVML calls through ctypes (standard library), for `gemctl check`. The library is
libnvidia-ml.so.1 from the driver (the tests' stand-in: build/fake-cuda through LD_LIBRARY_PATH)."""

import ctypes

SUCCESS, NOT_SUPPORTED, INSUFFICIENT_SIZE, TIMEOUT, GPU_IS_LOST = 0, 3, 7, 10, 15
XID_CRITICAL = 0x8


class NvmlError(Exception):
    def __init__(self, call, code, text):
        super().__init__(f"{call}: {text} (NVML {code})")
        self.code = code


class _ProcessInfo(ctypes.Structure):  # nvmlProcessInfo_t of the _v2/_v3 calls
    _fields_ = [('pid', ctypes.c_uint), ('usedGpuMemory', ctypes.c_ulonglong),
                ('gpuInstanceId', ctypes.c_uint), ('computeInstanceId', ctypes.c_uint)]


class _ProcessInfoV1(ctypes.Structure):
    _fields_ = [('pid', ctypes.c_uint), ('usedGpuMemory', ctypes.c_ulonglong)]


class _EventData(ctypes.Structure):
    _fields_ = [('device', ctypes.c_void_p), ('eventType', ctypes.c_ulonglong), ('eventData', ctypes.c_ulonglong),
                ('gpuInstanceId', ctypes.c_uint), ('computeInstanceId', ctypes.c_uint)]


class Nvml:
    """NVML opened and initialised; every call raises NvmlError on a failure."""

    def __init__(self, library='libnvidia-ml.so.1'):
        try:
            self.lib = ctypes.CDLL(library)
        except OSError as e:
            raise NvmlError('dlopen ' + library, -1, str(e))
        self.lib.nvmlErrorString.restype = ctypes.c_char_p
        self._call('nvmlInit_v2')

    def _fn(self, *names):
        for n in names:
            f = getattr(self.lib, n, None)
            if f is not None:
                return n, f
        raise NvmlError(names[0], -1, 'not in this NVML library')

    def _call(self, *names_and_args):
        names = names_and_args[0] if isinstance(names_and_args[0], tuple) else (names_and_args[0],)
        name, f = self._fn(*names)
        r = f(*names_and_args[1:])
        if r != SUCCESS:
            raise NvmlError(name, r, self.lib.nvmlErrorString(r).decode())
        return r

    def close(self):
        try:
            self.lib.nvmlShutdown()
        except Exception:
            pass

    def _text(self, name, *args):
        buf = ctypes.create_string_buffer(96)
        self._call(name, *args, buf, ctypes.c_uint(96))
        return buf.value.decode()

    def _uint(self, names, *args):
        v = ctypes.c_uint()
        self._call(names, *args, ctypes.byref(v))
        return v.value

    def driver_version(self):
        return self._text('nvmlSystemGetDriverVersion')

    def cuda_version(self):
        """e.g. 12080 for 12.8."""
        v = ctypes.c_int()
        self._call(('nvmlSystemGetCudaDriverVersion_v2', 'nvmlSystemGetCudaDriverVersion'), ctypes.byref(v))
        return v.value

    def count(self):
        return self._uint(('nvmlDeviceGetCount_v2', 'nvmlDeviceGetCount'))

    def handle(self, index=None, uuid=None):
        h = ctypes.c_void_p()
        if uuid is not None:
            self._call('nvmlDeviceGetHandleByUUID', uuid.encode(), ctypes.byref(h))
        else:
            self._call(('nvmlDeviceGetHandleByIndex_v2', 'nvmlDeviceGetHandleByIndex'), ctypes.c_uint(index),
                       ctypes.byref(h))
        return h

    def uuid(self, h):
        return self._text('nvmlDeviceGetUUID', h)

    def name(self, h):
        return self._text('nvmlDeviceGetName', h)

    def compute_mode(self, h):
        return self._uint('nvmlDeviceGetComputeMode', h)

    def persistence_mode(self, h):
        return self._uint('nvmlDeviceGetPersistenceMode', h)

    def mig_mode(self, h):
        cur, pend = ctypes.c_uint(), ctypes.c_uint()
        self._call('nvmlDeviceGetMigMode', h, ctypes.byref(cur), ctypes.byref(pend))
        return cur.value, pend.value

    def clock(self, h, kind=1, maximum=False):
        """MHz of clock `kind` (1 = SM); the maximum when asked."""
        return self._uint('nvmlDeviceGetMaxClockInfo' if maximum else 'nvmlDeviceGetClockInfo', h, ctypes.c_uint(kind))

    def clock_reasons(self, h):
        v = ctypes.c_ulonglong()
        self._call(('nvmlDeviceGetCurrentClocksEventReasons', 'nvmlDeviceGetCurrentClocksThrottleReasons'), h,
                   ctypes.byref(v))
        return v.value

    def ecc(self, h):
        """(ECC on, uncorrected errors since the last driver load)."""
        cur, pend = ctypes.c_uint(), ctypes.c_uint()
        self._call('nvmlDeviceGetEccMode', h, ctypes.byref(cur), ctypes.byref(pend))
        n = ctypes.c_ulonglong()
        self._call('nvmlDeviceGetTotalEccErrors', h, ctypes.c_uint(1), ctypes.c_uint(0), ctypes.byref(n))
        return cur.value == 1, n.value

    def processes(self, h):
        """[(pid, bytes)] of the compute processes on the GPU."""
        for names, struct in ((('nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetComputeRunningProcesses_v2'),
                               _ProcessInfo), (('nvmlDeviceGetComputeRunningProcesses',), _ProcessInfoV1)):
            try:
                self._fn(*names)
            except NvmlError:
                continue
            infos = (struct * 256)()
            n = ctypes.c_uint(256)
            self._call(names, h, ctypes.byref(n), infos)
            return [(infos[i].pid, infos[i].usedGpuMemory) for i in range(n.value)]
        raise NvmlError('nvmlDeviceGetComputeRunningProcesses', -1, 'not in this NVML library')

    def xid_events(self, h, seconds):
        """Critical XID numbers NVML reports for the GPU within `seconds` (NVML keeps no history)."""
        s = ctypes.c_void_p()
        self._call('nvmlEventSetCreate', ctypes.byref(s))
        try:
            self._call('nvmlDeviceRegisterEvents', h, ctypes.c_ulonglong(XID_CRITICAL), s)
            out = []
            left_ms = int(seconds * 1000)
            while left_ms > 0:
                d = _EventData()
                r = self.lib.nvmlEventSetWait_v2(s, ctypes.byref(d), ctypes.c_uint(min(left_ms, 200)))
                left_ms -= 200
                if r == SUCCESS and d.eventType & XID_CRITICAL:
                    out.append(d.eventData)
                elif r not in (SUCCESS, TIMEOUT):
                    raise NvmlError('nvmlEventSetWait_v2', r, self.lib.nvmlErrorString(r).decode())
            return out
        finally:
            self.lib.nvmlEventSetFree(s)
