#pragma once
// A growable FIFO ring of trivially copyable items with push at both ends. Capacity is a power of two and
// only grows (doubling) unless release() is called, so a queue that reached its working size stops
// allocating. Not thread-safe: owned by whoever holds the scheduler's core lock.

#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>

namespace dialer::sched::detail {

template <class T>
class ring {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  [[nodiscard]] T& front() noexcept { return data_[head_]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept {
    return data_[(head_ + i) & (capacity_ - 1)];
  }

  void push_back(const T& item) {
    if (size_ == capacity_) grow();
    data_[(head_ + size_) & (capacity_ - 1)] = item;
    ++size_;
  }
  void push_front(const T& item) {
    if (size_ == capacity_) grow();
    head_ = (head_ + capacity_ - 1) & (capacity_ - 1);
    data_[head_] = item;
    ++size_;
  }
  void pop_front() noexcept {
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
  }
  void clear() noexcept {
    head_ = 0;
    size_ = 0;
  }
  // Gives the memory back; used when a large queue has drained.
  void release() noexcept {
    data_.reset();
    capacity_ = 0;
    head_ = 0;
    size_ = 0;
  }

 private:
  void grow() {
    const std::size_t capacity = capacity_ == 0 ? 16 : capacity_ * 2;
    std::unique_ptr<T[]> data(new T[capacity]);
    for (std::size_t i = 0; i < size_; ++i) data[i] = data_[(head_ + i) & (capacity_ - 1)];
    data_ = std::move(data);
    capacity_ = capacity;
    head_ = 0;
  }

  std::unique_ptr<T[]> data_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace dialer::sched::detail
