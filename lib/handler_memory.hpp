#pragma once
// Private: a one-slot handler memory block, so that a connection's recurring operations
// (the posted flush and the socket write, never outstanding at the same time) allocate
// nothing per message. Asio's per-thread recycling cache has only two slots, which the
// pending read already needs.

#include <atomic>
#include <cstddef>
#include <new>

namespace wscoro::detail {

class handler_memory {
  public:
    handler_memory() = default;
    handler_memory(const handler_memory&) = delete;
    handler_memory& operator=(const handler_memory&) = delete;

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
    // Room for the socket write operation (280 bytes with Asio 1.22 on x86-64); a larger
    // request still works, through the heap.
    alignas(std::max_align_t) unsigned char storage_[320];
    std::atomic<bool> in_use_{false};
};

/// A standard allocator over a handler_memory, for asio::bind_allocator.
template <typename T>
class handler_allocator {
  public:
    using value_type = T;
    explicit handler_allocator(handler_memory& m) noexcept : memory_(&m) {}
    template <typename U>
    handler_allocator(const handler_allocator<U>& other) noexcept : memory_(other.memory_) {}

    T* allocate(std::size_t n) { return static_cast<T*>(memory_->allocate(sizeof(T) * n)); }
    void deallocate(T* p, std::size_t) noexcept { memory_->deallocate(p); }

    template <typename U>
    bool operator==(const handler_allocator<U>& other) const noexcept {
        return memory_ == other.memory_;
    }
    template <typename U>
    bool operator!=(const handler_allocator<U>& other) const noexcept {
        return memory_ != other.memory_;
    }

  private:
    template <typename>
    friend class handler_allocator;
    handler_memory* memory_;
};

}  // namespace wscoro::detail
