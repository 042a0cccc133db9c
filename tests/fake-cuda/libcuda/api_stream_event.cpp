// Streams and events. All streams of a device share its FIFO; a stream only remembers the
// sequence number of its latest op so synchronise/query know what to wait for. Capture rules
// (capture_rules.h) are checked first: a refused call does nothing.
#include "capture_rules.h"
#include "fake_driver.h"
#include "mem_model.h"

using fakecuda::Driver;
using fakecuda::HandleKind;
using fakecuda::StreamTarget;

namespace {

CUresult create_stream(CUstream* ph, unsigned int flags, int priority) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (ph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if ((flags & ~static_cast<unsigned int>(CU_STREAM_NON_BLOCKING)) != 0) return CUDA_ERROR_INVALID_VALUE;
  CUcontext c = fakecuda::current_ctx();
  if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  auto* s = new CUstream_st();
  s->device = c->device;
  s->flags = flags;
  s->priority = priority;
  Driver::get().add_handle(s, HandleKind::kStream);
  *ph = s;
  return CUDA_SUCCESS;
}

CUresult destroy_stream(CUstream s) {
  if (CUresult r = fakecuda::check_init()) return r;
  // Queued work still runs (as on a real device); the object is retired, see CUctx_st.
  if (!Driver::get().remove_handle(s, HandleKind::kStream)) return CUDA_ERROR_INVALID_HANDLE;
  fakecuda::capture_stream_destroyed(s);
  return CUDA_SUCCESS;
}

// Synchronise and query: always illegal on a capturing stream (and the legacy stream beside a
// blocking capture), and potentially unsafe calls.
CUresult check_sync_query(const StreamTarget& t, const char* api) {
  if (CUresult r = fakecuda::capture_check_stream(t, fakecuda::StreamUse::kSyncQuery, api)) return r;
  return fakecuda::capture_check_unsafe(api);
}

CUresult stream_sync(CUstream s, bool ptsz) {
  if (CUresult r = fakecuda::check_init()) return r;
  StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  if (CUresult r = check_sync_query(t, "cuStreamSynchronize")) return r;
  Driver::get().sim(t.device).wait(fakecuda::sync_seq(t));
  fakecuda::Memory::get().on_synchronize(t.device);  // pools release over their threshold
  return CUDA_SUCCESS;
}

CUresult stream_query(CUstream s, bool ptsz) {
  if (CUresult r = fakecuda::check_init()) return r;
  StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  if (CUresult r = check_sync_query(t, "cuStreamQuery")) return r;
  return Driver::get().sim(t.device).done(fakecuda::sync_seq(t)) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

bool valid_event(CUevent e) { return Driver::get().valid_handle(e, HandleKind::kEvent); }

CUresult event_record(CUevent e, CUstream s, bool ptsz) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (!valid_event(e)) return CUDA_ERROR_INVALID_HANDLE;
  StreamTarget t;
  if (CUresult r = fakecuda::resolve_stream(s, ptsz, &t)) return r;
  CUgraph g = nullptr;
  uint64_t capture_id = 0;
  if (CUresult r = fakecuda::capture_enqueue(t, "cuEventRecord", &g, &capture_id)) return r;
  e->captured_id.store(capture_id);
  if (g != nullptr) return CUDA_SUCCESS;  // an event node of the capture: nothing runs now
  fakecuda::Op op;
  op.kind = fakecuda::Op::Kind::kEventRecord;
  op.event = e->timing;
  // The executor writes only time_ns, so publishing the sequence after enqueue is safe: if the
  // op already ran, the event simply reads as complete.
  uint64_t seq = Driver::get().sim(t.device).enqueue(std::move(op));
  e->timing->device.store(t.device);
  e->timing->seq.store(seq);
  fakecuda::note_enqueued(t, seq);
  return CUDA_SUCCESS;
}

CUresult event_destroy(CUevent e) {
  if (CUresult r = fakecuda::check_init()) return r;
  return Driver::get().remove_handle(e, HandleKind::kEvent) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

// Event query and synchronise: illegal on an event recorded into a capture, and potentially unsafe.
CUresult check_event_use(CUevent e, const char* api) {
  if (CUresult r = fakecuda::capture_check_event(e->captured_id.load(), api)) return r;
  return fakecuda::capture_check_unsafe(api);
}

// Completion of an event's latest record; an event never recorded counts as complete.
bool event_done(CUevent e) {
  int dev = e->timing->device.load();
  return dev < 0 || Driver::get().sim(dev).done(e->timing->seq.load());
}

CUresult elapsed(float* ms, CUevent start, CUevent end) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (ms == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (!valid_event(start) || !valid_event(end)) return CUDA_ERROR_INVALID_HANDLE;
  if ((start->flags | end->flags) & CU_EVENT_DISABLE_TIMING) return CUDA_ERROR_INVALID_HANDLE;
  if (start->timing->device.load() < 0 || end->timing->device.load() < 0) return CUDA_ERROR_INVALID_HANDLE;
  if (!event_done(start) || !event_done(end)) return CUDA_ERROR_NOT_READY;
  fakecuda::Nanos d = end->timing->time_ns.load() - start->timing->time_ns.load();
  *ms = static_cast<float>(static_cast<double>(d) / 1e6);
  return CUDA_SUCCESS;
}

}  // namespace

FAKE_API CUresult CUDAAPI cuStreamCreate(CUstream* phStream, unsigned int Flags) {
  return create_stream(phStream, Flags, 0);
}

FAKE_API CUresult CUDAAPI cuStreamCreateWithPriority(CUstream* phStream, unsigned int flags, int priority) {
  return create_stream(phStream, flags, priority);
}

FAKE_API CUresult CUDAAPI cuStreamDestroy_v2(CUstream hStream) { return destroy_stream(hStream); }
FAKE_API CUresult CUDAAPI cuStreamDestroy(CUstream hStream) { return destroy_stream(hStream); }
FAKE_API CUresult CUDAAPI cuStreamSynchronize(CUstream hStream) { return stream_sync(hStream, false); }
FAKE_API CUresult CUDAAPI cuStreamSynchronize_ptsz(CUstream hStream) { return stream_sync(hStream, true); }
FAKE_API CUresult CUDAAPI cuStreamQuery(CUstream hStream) { return stream_query(hStream, false); }
FAKE_API CUresult CUDAAPI cuStreamQuery_ptsz(CUstream hStream) { return stream_query(hStream, true); }

FAKE_API CUresult CUDAAPI cuEventCreate(CUevent* phEvent, unsigned int Flags) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (phEvent == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (fakecuda::current_ctx() == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
  auto* e = new CUevent_st();
  e->flags = Flags;
  Driver::get().add_handle(e, HandleKind::kEvent);
  *phEvent = e;
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuEventDestroy_v2(CUevent hEvent) { return event_destroy(hEvent); }
FAKE_API CUresult CUDAAPI cuEventDestroy(CUevent hEvent) { return event_destroy(hEvent); }
FAKE_API CUresult CUDAAPI cuEventRecord(CUevent hEvent, CUstream hStream) { return event_record(hEvent, hStream, false); }
FAKE_API CUresult CUDAAPI cuEventRecord_ptsz(CUevent hEvent, CUstream hStream) {
  return event_record(hEvent, hStream, true);
}

FAKE_API CUresult CUDAAPI cuEventQuery(CUevent hEvent) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (!valid_event(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = check_event_use(hEvent, "cuEventQuery")) return r;
  return event_done(hEvent) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

FAKE_API CUresult CUDAAPI cuEventSynchronize(CUevent hEvent) {
  if (CUresult r = fakecuda::check_init()) return r;
  if (!valid_event(hEvent)) return CUDA_ERROR_INVALID_HANDLE;
  if (CUresult r = check_event_use(hEvent, "cuEventSynchronize")) return r;
  int dev = hEvent->timing->device.load();
  if (dev >= 0) {
    Driver::get().sim(dev).wait(hEvent->timing->seq.load());
    fakecuda::Memory::get().on_synchronize(dev);
  }
  return CUDA_SUCCESS;
}

FAKE_API CUresult CUDAAPI cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  return elapsed(pMilliseconds, hStart, hEnd);
}

FAKE_API CUresult CUDAAPI cuEventElapsedTime_v2(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  return elapsed(pMilliseconds, hStart, hEnd);
}

FAKE_ALIAS(cuStreamCreate)
FAKE_ALIAS(cuStreamCreateWithPriority)
FAKE_ALIAS(cuStreamDestroy_v2)
FAKE_ALIAS(cuStreamDestroy)
FAKE_ALIAS(cuStreamSynchronize)
FAKE_ALIAS(cuStreamSynchronize_ptsz)
FAKE_ALIAS(cuStreamQuery)
FAKE_ALIAS(cuStreamQuery_ptsz)
FAKE_ALIAS(cuEventCreate)
FAKE_ALIAS(cuEventDestroy_v2)
FAKE_ALIAS(cuEventDestroy)
FAKE_ALIAS(cuEventRecord)
FAKE_ALIAS(cuEventRecord_ptsz)
FAKE_ALIAS(cuEventQuery)
FAKE_ALIAS(cuEventSynchronize)
FAKE_ALIAS(cuEventElapsedTime)
FAKE_ALIAS(cuEventElapsedTime_v2)
