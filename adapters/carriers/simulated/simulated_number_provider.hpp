#pragma once
// The simulated number inventory: a fixed, deterministic set of numbers in ranges that regulators
// reserve for fiction, so a demo can search, buy and release numbers without reaching anyone real.
//
//   US local      NPA-555-0100..0199 for 22 area codes spread over every US time zone
//   US toll-free  8XX-555-0100..0199 for 800, 833, 844, 855, 866, 877, 888
//   CA local      416 / 604 / 514-555-0100..0199
//   GB local      020 7946 0000..0999 (London), 0113 496 0000..0999 (Leeds)   (Ofcom drama ranges)
//   GB toll-free  0808 157 0000..0999                                         (Ofcom drama range)
//   AU mobile     the 30 numbers 0491 57X XXX that ACMA lists for creative works
// GB mobile 07700 900XXX is left out: libphonenumber 8.12 does not accept it as a valid number.
//
// The provider is stateless: it does not know what this platform already owns (the inventory
// service filters that out). Thread-safe: the inventory is immutable and built once per process.

#include <span>
#include <string>

#include "engine/ports/number_provider.hpp"

namespace dialer::carriers {

// One number of the simulated inventory; area_code is the national destination code ("415", "20").
struct inventory_entry {
  std::string e164;
  std::string country;
  number_type type = number_type::local;
  std::string area_code;
  std::string region;
};

// Every number of the simulated inventory, in search order (country, type, area code, number).
// Thread-safe; built on first use.
[[nodiscard]] std::span<const inventory_entry> simulated_inventory();

class simulated_number_provider final : public number_provider {
 public:
  [[nodiscard]] std::string name() const override { return "simulated"; }
  // invalid_input for a malformed query (country not two letters, non-digit area code or digits,
  // limit outside 1..1000). A country without simulated numbers yields an empty list.
  [[nodiscard]] result<std::vector<available_number>> search(const number_search& query) override;
  // not_found: "number +1... is not in the simulated inventory". provider_ref is "SIMPN<digits>".
  [[nodiscard]] result<purchased_number> buy(const std::string& e164) override;
  // Always succeeds for an inventory number; not_found otherwise.
  [[nodiscard]] result<void> release(const purchased_number& number) override;
};

}  // namespace dialer::carriers
