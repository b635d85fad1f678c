#pragma once
// How libphonenumber's number types map to ours. Shared by the reference parser (engine/phone.cpp) and the
// import fast path (engine/contacts/phone_fast_path.cpp) so the two can never disagree. Internal: it includes
// libphonenumber, which public engine headers must not.

#include <phonenumbers/phonenumberutil.h>

#include "engine/telephony.hpp"

namespace dialer {

// FIXED_LINE, FIXED_LINE_OR_MOBILE and every special type are `local`.
[[nodiscard]] inline number_type to_number_type(
    i18n::phonenumbers::PhoneNumberUtil::PhoneNumberType t) noexcept {
  switch (t) {
    case i18n::phonenumbers::PhoneNumberUtil::MOBILE:
      return number_type::mobile;
    case i18n::phonenumbers::PhoneNumberUtil::TOLL_FREE:
      return number_type::toll_free;
    default:
      return number_type::local;
  }
}

}  // namespace dialer
