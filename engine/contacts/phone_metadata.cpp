#include "engine/contacts/phone_metadata.hpp"

#include <cstdint>
#include <string_view>

// Exported by libphonenumber (declared in its uninstalled metadata.h). Decoding the protobuf wire
// format by hand keeps us from linking libprotobuf for a read-only walk over a few fields.
namespace i18n::phonenumbers {
int metadata_size();
const void* metadata_get();
}  // namespace i18n::phonenumbers

namespace dialer::contacts {
namespace {

// Field numbers from phonemetadata.proto (checked against phonemetadata.pb.h).
namespace field {
constexpr int collection_metadata = 1;
constexpr int desc_national_number_pattern = 2;
constexpr int desc_possible_length = 9;
constexpr int desc_possible_length_local_only = 10;
constexpr int general_desc = 1, fixed_line = 2, mobile = 3, toll_free = 4, premium_rate = 5, shared_cost = 6,
              personal_number = 7, voip = 8, id = 9, country_code = 10, international_prefix = 11,
              national_prefix = 12, national_prefix_for_parsing = 15, national_prefix_transform_rule = 16,
              same_mobile_and_fixed_line_pattern = 18, pager = 21, main_country_for_code = 22,
              leading_digits = 23, uan = 25, voicemail = 28;
}  // namespace field

enum wire_type : int { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

// A cursor over one protobuf message. Any malformed input makes ok() false and stops the walk.
class wire_reader {
 public:
  explicit wire_reader(std::string_view bytes) : data_(bytes) {}

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] bool done() const { return !ok_ || pos_ >= data_.size(); }

  bool next(int& field_number, int& type) {
    std::uint64_t key = 0;
    if (!read_varint(key)) return false;
    field_number = static_cast<int>(key >> 3);
    type = static_cast<int>(key & 7);
    return true;
  }
  bool read_varint(std::uint64_t& out) {
    out = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return fail();
      const auto byte = static_cast<unsigned char>(data_[pos_++]);
      out |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return fail();
  }
  bool read_bytes(std::string_view& out) {
    std::uint64_t size = 0;
    if (!read_varint(size)) return false;
    if (size > data_.size() - pos_) return fail();
    out = data_.substr(pos_, size);
    pos_ += size;
    return true;
  }
  bool skip(int type) {
    std::uint64_t ignored = 0;
    std::string_view ignored_bytes;
    switch (type) {
      case varint:
        return read_varint(ignored);
      case fixed64:
        return advance(8);
      case length_delimited:
        return read_bytes(ignored_bytes);
      case fixed32:
        return advance(4);
      default:
        return fail();
    }
  }

 private:
  bool advance(std::size_t n) {
    if (n > data_.size() - pos_) return fail();
    pos_ += n;
    return true;
  }
  bool fail() {
    ok_ = false;
    return false;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// proto2 repeated int32 may be written packed or one varint per entry; accept both.
bool read_int_list(wire_reader& r, int type, std::vector<int>& out) {
  if (type == varint) {
    std::uint64_t v = 0;
    if (!r.read_varint(v)) return false;
    out.push_back(static_cast<int>(static_cast<std::int32_t>(v)));
    return true;
  }
  if (type != length_delimited) return false;
  std::string_view packed;
  if (!r.read_bytes(packed)) return false;
  wire_reader inner(packed);
  while (!inner.done()) {
    std::uint64_t v = 0;
    if (!inner.read_varint(v)) return false;
    out.push_back(static_cast<int>(static_cast<std::int32_t>(v)));
  }
  return inner.ok();
}

bool decode_desc(std::string_view bytes, number_desc& desc) {
  wire_reader r(bytes);
  int number = 0, type = 0;
  while (!r.done() && r.next(number, type)) {
    std::string_view text;
    bool good = true;
    if (number == field::desc_national_number_pattern && type == length_delimited) {
      good = r.read_bytes(text);
      desc.national_number_pattern.assign(text);
    } else if (number == field::desc_possible_length) {
      good = read_int_list(r, type, desc.possible_lengths);
    } else if (number == field::desc_possible_length_local_only) {
      good = read_int_list(r, type, desc.possible_lengths_local_only);
    } else {
      good = r.skip(type);
    }
    if (!good) return false;
  }
  return r.ok();
}

number_desc* desc_for_field(region_metadata& m, int number) {
  switch (number) {
    case field::general_desc:
      return &m.general_desc;
    case field::fixed_line:
      return &m.fixed_line;
    case field::mobile:
      return &m.mobile;
    case field::toll_free:
      return &m.toll_free;
    case field::premium_rate:
      return &m.premium_rate;
    case field::shared_cost:
      return &m.shared_cost;
    case field::personal_number:
      return &m.personal_number;
    case field::voip:
      return &m.voip;
    case field::pager:
      return &m.pager;
    case field::uan:
      return &m.uan;
    case field::voicemail:
      return &m.voicemail;
    default:
      return nullptr;
  }
}

std::string* string_for_field(region_metadata& m, int number) {
  switch (number) {
    case field::id:
      return &m.id;
    case field::international_prefix:
      return &m.international_prefix;
    case field::national_prefix:
      return &m.national_prefix;
    case field::national_prefix_for_parsing:
      return &m.national_prefix_for_parsing;
    case field::national_prefix_transform_rule:
      return &m.national_prefix_transform_rule;
    case field::leading_digits:
      return &m.leading_digits;
    default:
      return nullptr;
  }
}

bool decode_region(std::string_view bytes, region_metadata& m) {
  wire_reader r(bytes);
  int number = 0, type = 0;
  while (!r.done() && r.next(number, type)) {
    std::string_view text;
    std::uint64_t v = 0;
    bool good = true;
    if (auto* desc = desc_for_field(m, number); desc != nullptr && type == length_delimited) {
      good = r.read_bytes(text) && decode_desc(text, *desc);
    } else if (auto* str = string_for_field(m, number); str != nullptr && type == length_delimited) {
      good = r.read_bytes(text);
      str->assign(text);
    } else if (number == field::country_code && type == varint) {
      good = r.read_varint(v);
      m.country_code = static_cast<int>(v);
    } else if (number == field::same_mobile_and_fixed_line_pattern && type == varint) {
      good = r.read_varint(v);
      m.same_mobile_and_fixed_line_pattern = v != 0;
    } else if (number == field::main_country_for_code && type == varint) {
      good = r.read_varint(v);
      m.main_country_for_code = v != 0;
    } else {
      good = r.skip(type);
    }
    if (!good) return false;
  }
  return r.ok();
}

}  // namespace

result<std::vector<region_metadata>> load_compiled_metadata() {
  const std::string_view bytes(static_cast<const char*>(i18n::phonenumbers::metadata_get()),
                               static_cast<std::size_t>(i18n::phonenumbers::metadata_size()));
  std::vector<region_metadata> regions;
  wire_reader r(bytes);
  int number = 0, type = 0;
  while (!r.done() && r.next(number, type)) {
    if (number != field::collection_metadata || type != length_delimited) {
      if (!r.skip(type)) break;
      continue;
    }
    std::string_view region_bytes;
    region_metadata m;
    if (!r.read_bytes(region_bytes) || !decode_region(region_bytes, m)) {
      return make_error(errc::internal, "libphonenumber metadata is malformed after {} regions",
                        regions.size());
    }
    regions.push_back(std::move(m));
  }
  if (!r.ok() || regions.empty()) {
    return make_error(errc::internal, "libphonenumber metadata could not be decoded ({} bytes)",
                      bytes.size());
  }
  return regions;
}

}  // namespace dialer::contacts
