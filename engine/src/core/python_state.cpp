#include "shard/engine/python_state.h"

#include <algorithm>

#include "core/frame_internals.h"

namespace shard::engine {

void PythonState::init_fresh(_PyCFrame* base_cframe, _PyStackChunk* root_chunk,
                             std::size_t chunk_bytes, _PyErr_StackItem* exc_root,
                             PyObject* context, int recursion_cap) {
  cframe_ = base_cframe;
  recursion_depth_ = 0;
  recursion_cap_ = recursion_cap;
  exc_info_ = exc_root;
  Py_XSETREF(context_, context);
  root_chunk->previous = nullptr;
  root_chunk->size = chunk_bytes;
  root_chunk->top = 0;
  datastack_chunk_ = root_chunk;
  // data[0] is never used: CPython frees a chunk when its first frame is popped,
  // and this one must stay (it is part of the pooled block).
  datastack_top_ = &root_chunk->data[1];
  datastack_limit_ = reinterpret_cast<PyObject**>(reinterpret_cast<char*>(root_chunk) + chunk_bytes);
  trash_delete_nesting_ = 0;
  tracing_ = 0;
}

int PythonState::effective_limit(const PyThreadState* tstate) const {
  return std::min(tstate->recursion_limit, recursion_cap_);
}

void PythonState::save(PyThreadState* tstate) {
  cframe_ = tstate->cframe;
  recursion_depth_ = tstate->recursion_limit - tstate->recursion_remaining - recursion_offset_;
  exc_info_ = tstate->exc_info;
  context_ = tstate->context;  // the reference moves with it
  tstate->context = nullptr;
  datastack_chunk_ = tstate->datastack_chunk;
  datastack_top_ = tstate->datastack_top;
  datastack_limit_ = tstate->datastack_limit;
  trash_delete_nesting_ = tstate->trash_delete_nesting;
  tracing_ = tstate->tracing;
}

void PythonState::restore(PyThreadState* tstate) {
  tstate->cframe = cframe_;
  // sys.settrace/setprofile act on the thread; a tasklet suspended before they
  // were called must see them when it resumes.
  cframe_->use_tracing = tracing_ == 0 ? thread_use_tracing(tstate) : 0;
  recursion_offset_ = tstate->recursion_limit - effective_limit(tstate);
  tstate->recursion_remaining = effective_limit(tstate) - recursion_depth_;
  tstate->exc_info = exc_info_;
  Py_XSETREF(tstate->context, context_);
  context_ = nullptr;
  tstate->context_ver++;
  tstate->datastack_chunk = datastack_chunk_;
  tstate->datastack_top = datastack_top_;
  tstate->datastack_limit = datastack_limit_;
  tstate->trash_delete_nesting = trash_delete_nesting_;
  tstate->tracing = tracing_;
}

void PythonState::drop_recursion_cap(PyThreadState* tstate) {
  tstate->recursion_remaining += recursion_offset_;
  recursion_offset_ = 0;
}

void PythonState::reapply_recursion_cap(PyThreadState* tstate) {
  int depth = tstate->recursion_limit - tstate->recursion_remaining - recursion_offset_;
  recursion_offset_ = tstate->recursion_limit - effective_limit(tstate);
  tstate->recursion_remaining = effective_limit(tstate) - depth;
}

int PythonState::recursion_depth(const PyThreadState* running) const {
  if (running == nullptr) return recursion_depth_;
  return running->recursion_limit - running->recursion_remaining - recursion_offset_;
}

int PythonState::nesting_level(const PyThreadState* running) const {
  // One _PyCFrame per evaluation loop entered, above the base one the
  // tasklet (or thread) starts with; the first loop runs the tasklet's function.
  int cframes = 0;
  for (const _PyCFrame* f = running != nullptr ? running->cframe : cframe_; f != nullptr; f = f->previous) ++cframes;
  return std::max(cframes - 2, 0);
}

int PythonState::traverse(visitproc visit, void* arg, PyObject* const* top_sp) const {
  Py_VISIT(context_);
  if (exc_info_ != nullptr) {
    // Only the tasklet's own root item: items above it belong to generators,
    // which traverse them.
    const _PyErr_StackItem* root = exc_info_;
    while (root->previous_item != nullptr) root = root->previous_item;
    Py_VISIT(root->exc_value);
  }
  return shard_frames_traverse(top_frame(), top_sp, visit, arg);
}

}  // namespace shard::engine
