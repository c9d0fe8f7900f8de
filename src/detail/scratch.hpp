// Scratch matrices that a pass over row blocks keeps from block to block and from call to call.
// SPDX-License-Identifier: MIT
#pragma once

#include <nnlift/types.hpp>

namespace nnlift::detail {

/// Matrices of the sizes last asked for, each returned again for its size: a pass's row blocks
/// come in two sizes (the full block and the last one), so a pass that takes its temporaries
/// from here allocates nothing after its first. Declare one `thread_local` per temporary in a
/// block function: a fresh block matrix each time costs an allocation per block and call. Under
/// AddressSanitizer each one above 128 kB is a fresh mapping of memory, zeroed page by page: 40%
/// of the sanitized unit tests' CPU time went to the kernel (155 of 392 s, 2026-12-07), most of it
/// in the fits of the biases and the output layer, which now take their blocks from here. A
/// returned matrix holds what it last held, or nothing: the caller overwrites it.
template <class Plain = Matrix>
class BlockScratch {
 public:
  Plain& get(Index rows, Index cols = 1) {
    for (int i = 0; i < 2; ++i) {
      if (m_slots[i].rows() == rows && m_slots[i].cols() == cols) {
        m_last = i;
        return m_slots[i];
      }
    }
    // A new size replaces the slot the previous call did not return.
    m_last = 1 - m_last;
    m_slots[m_last].resize(rows, cols);
    return m_slots[m_last];
  }

 private:
  Plain m_slots[2];
  int m_last = 0;
};

}  // namespace nnlift::detail
