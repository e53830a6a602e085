#pragma once
// Private: the write queue's byte buffer.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <utility>

namespace wscoro::detail {

/// A growable byte buffer whose growth does not zero-fill: frames are appended to it by
/// writing straight into the space extend() hands out (std::vector<std::byte> would zero
/// that space first, and its range insert is a general template with more bookkeeping than
/// a small frame's copy). Capacity is kept by clear(), so a steady stream of frames
/// allocates nothing.
class byte_buffer {
  public:
    byte_buffer() noexcept = default;
    byte_buffer(byte_buffer&& o) noexcept
        : p_(std::move(o.p_)), size_(std::exchange(o.size_, 0)), cap_(std::exchange(o.cap_, 0)) {}
    byte_buffer& operator=(byte_buffer&& o) noexcept {
        p_ = std::move(o.p_);
        size_ = std::exchange(o.size_, 0);
        cap_ = std::exchange(o.cap_, 0);
        return *this;
    }

    std::byte* data() noexcept { return p_.get(); }
    const std::byte* data() const noexcept { return p_.get(); }
    std::size_t size() const noexcept { return size_; }
    std::size_t capacity() const noexcept { return cap_; }
    bool empty() const noexcept { return size_ == 0; }
    void clear() noexcept { size_ = 0; }

    /// Makes the buffer `n` bytes longer and returns where the new bytes go (uninitialised).
    std::byte* extend(std::size_t n) {
        if (cap_ - size_ < n) [[unlikely]]
            grow(n);
        std::byte* at = p_.get() + size_;
        size_ += n;
        return at;
    }
    void append(const std::byte* p, std::size_t n) {
        if (n != 0) std::memcpy(extend(n), p, n);
    }
    void assign(const std::byte* p, std::size_t n) {
        clear();
        append(p, n);
    }
    /// Frees the memory (the buffer must be empty).
    void release() noexcept {
        p_.reset();
        size_ = cap_ = 0;
    }

    friend void swap(byte_buffer& a, byte_buffer& b) noexcept {
        std::swap(a.p_, b.p_);
        std::swap(a.size_, b.size_);
        std::swap(a.cap_, b.cap_);
    }

  private:
    void grow(std::size_t n) {
        // Doubling, as std::vector: appends are amortised constant time.
        const std::size_t cap = std::max(cap_ * 2, size_ + n);
        auto p = std::make_unique_for_overwrite<std::byte[]>(cap);
        if (size_ != 0) std::memcpy(p.get(), p_.get(), size_);
        p_ = std::move(p);
        cap_ = cap;
    }

    std::unique_ptr<std::byte[]> p_;
    std::size_t size_ = 0;
    std::size_t cap_ = 0;
};

}  // namespace wscoro::detail
