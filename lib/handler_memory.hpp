#pragma once
// Private: a one-slot handler memory block, so that a connection's recurring operations
// (the posted flush and the socket write, never outstanding at the same time) allocate
// nothing per message. Asio's per-thread recycling cache has only two slots, which the
// pending read already needs.

#include <atomic>
#include <cstddef>
#include <new>

namespace wscoro::detail {

/// `Size` bytes of inline storage: 320 is room for the socket write operation (280 bytes
/// with Asio 1.22 on x86-64); a larger request still works, through the heap.
template <std::size_t Size>
class basic_handler_memory {
  public:
    basic_handler_memory() = default;
    basic_handler_memory(const basic_handler_memory&) = delete;
    basic_handler_memory& operator=(const basic_handler_memory&) = delete;

    void* allocate(std::size_t size) {
        // The block may be released on another thread (the one completing the operation),
        // hence the atomic flag; a second concurrent user falls back to the heap.
        if (size <= sizeof(storage_) && !in_use_.exchange(true, std::memory_order_acquire))
            return storage_;
        return ::operator new(size);
    }

    void deallocate(void* p) noexcept {
        if (p == storage_)
            in_use_.store(false, std::memory_order_release);
        else
            ::operator delete(p);
    }

  private:
    alignas(std::max_align_t) unsigned char storage_[Size];
    std::atomic<bool> in_use_{false};
};

using handler_memory = basic_handler_memory<320>;
/// For a timer's wait operation (the handler holds one shared_ptr).
using timer_handler_memory = basic_handler_memory<192>;

/// A standard allocator over a handler memory block, for asio::bind_allocator.
template <typename T, typename Memory = handler_memory>
class handler_allocator {
  public:
    using value_type = T;
    explicit handler_allocator(Memory& m) noexcept : memory_(&m) {}
    template <typename U>
    handler_allocator(const handler_allocator<U, Memory>& other) noexcept
        : memory_(other.memory_) {}

    T* allocate(std::size_t n) { return static_cast<T*>(memory_->allocate(sizeof(T) * n)); }
    void deallocate(T* p, std::size_t) noexcept { memory_->deallocate(p); }

    template <typename U>
    bool operator==(const handler_allocator<U, Memory>& other) const noexcept {
        return memory_ == other.memory_;
    }
    template <typename U>
    bool operator!=(const handler_allocator<U, Memory>& other) const noexcept {
        return memory_ != other.memory_;
    }

  private:
    template <typename, typename>
    friend class handler_allocator;
    Memory* memory_;
};

}  // namespace wscoro::detail
