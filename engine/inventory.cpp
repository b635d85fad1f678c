#include "engine/inventory.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "engine/phone.hpp"

namespace dialer {
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

std::optional<std::int64_t> to_id(const std::string& s) {
  if (!all_digits(s) || s.size() > 18) return std::nullopt;
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

result<void> validate_agent_name(const std::string& name) {
  if (name.empty()) return make_error(errc::invalid_input, "agent name is empty");
  if (name.size() > 100) return make_error(errc::invalid_input, "agent name is longer than 100 characters");
  if (all_digits(name))
    return make_error(errc::invalid_input, "agent name '{}' is all digits; digits alone name an agent id", name);
  const auto ok_char = [](unsigned char c) {
    return std::isalnum(c) != 0 || c == ' ' || c == '.' || c == '_' || c == '-' || c == '@';
  };
  if (!std::isalnum(static_cast<unsigned char>(name[0])) || !std::all_of(name.begin(), name.end(), ok_char))
    return make_error(errc::invalid_input,
                      "agent name '{}' is invalid: use letters, digits, space, '.', '_', '-', '@', starting with a "
                      "letter or digit",
                      name);
  return ok();
}

result<void> validate_handoff(const std::string& handoff) {
  if (handoff.empty()) return ok();
  for (std::string_view scheme : {"wss://", "ws://", "https://", "http://", "sip:", "sips:"}) {
    if (starts_with(handoff, scheme)) {
      if (handoff.size() == scheme.size())
        return make_error(errc::invalid_input, "hand-off target '{}' has nothing after the scheme", handoff);
      if (std::any_of(handoff.begin(), handoff.end(), [](char c) { return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f; }))
        return make_error(errc::invalid_input, "hand-off target contains whitespace or control characters");
      if (handoff.size() > 2048) return make_error(errc::invalid_input, "hand-off target is longer than 2048 characters");
      return ok();
    }
  }
  return make_error(errc::invalid_input,
                    "hand-off target '{}' is neither a media-stream URL (wss://, https://) nor a SIP URI (sip:, sips:)",
                    handoff);
}

result<void> validate_limits(const number_limits& limits) {
  if (limits.max_concurrent_calls && (*limits.max_concurrent_calls < 1 || *limits.max_concurrent_calls > 10000))
    return make_error(errc::invalid_input, "max concurrent calls must be between 1 and 10000, got {}",
                      *limits.max_concurrent_calls);
  if (limits.max_cps && !(*limits.max_cps > 0 && *limits.max_cps <= 1000))
    return make_error(errc::invalid_input, "max calls per second must be above 0 and at most 1000, got {}",
                      *limits.max_cps);
  return ok();
}

result<agent> inventory_service::create_agent(const std::string& name, const std::string& handoff) {
  if (auto r = validate_agent_name(name); !r) return std::move(r).error();
  if (auto r = validate_handoff(handoff); !r) return std::move(r).error();
  return store_.create_agent(name, handoff);
}

namespace {
result<void> validate_page(page_request page) {
  if (page.limit < 1 || page.limit > 1000)
    return make_error(errc::invalid_input, "limit must be between 1 and 1000, got {}", page.limit);
  if (page.after < 0) return make_error(errc::invalid_input, "the cursor is not valid");
  return ok();
}
}  // namespace

result<std::vector<agent>> inventory_service::page_agents(page_request page) {
  if (auto r = validate_page(page); !r) return std::move(r).error();
  return store_.page_agents(page);
}

result<agent> inventory_service::update_agent(agent_id id, const std::optional<std::string>& name,
                                              const std::optional<std::string>& handoff) {
  if (!name && !handoff) return make_error(errc::invalid_input, "nothing to change: give a name or a handoff");
  if (name)
    if (auto r = validate_agent_name(*name); !r) return std::move(r).error();
  if (handoff)
    if (auto r = validate_handoff(*handoff); !r) return std::move(r).error();
  return store_.update_agent(id, name, handoff);
}

result<std::vector<phone_number>> inventory_service::page_numbers(const number_filter& filter, page_request page) {
  if (auto r = validate_page(page); !r) return std::move(r).error();
  return store_.page_numbers(filter, page);
}

result<phone_number> inventory_service::update_limits(number_id id, const number_limits& limits) {
  if (!limits.max_concurrent_calls && !limits.max_cps)
    return make_error(errc::invalid_input, "nothing to change: give max_concurrent_calls or max_cps");
  if (auto r = validate_limits(limits); !r) return std::move(r).error();
  return store_.update_limits(id, limits.max_concurrent_calls, limits.max_cps);
}

result<agent> inventory_service::resolve_agent(const std::string& id_or_name) {
  if (auto id = to_id(id_or_name)) return store_.find_agent(agent_id{*id});
  if (id_or_name.empty()) return make_error(errc::invalid_input, "agent is empty: give an agent id or name");
  return store_.find_agent(id_or_name);
}

result<phone_number> inventory_service::resolve_number(const std::string& id_or_e164) {
  if (auto id = to_id(id_or_e164)) return store_.find_number(number_id{*id});
  auto parsed = parse_phone(id_or_e164, "US");
  if (!parsed) return std::move(parsed).error();
  return store_.find_number(parsed->e164);
}

result<std::vector<available_number>> inventory_service::search(number_search query) {
  std::string country;
  for (char c : query.country) country += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (country.size() != 2 || !std::isalpha(static_cast<unsigned char>(country[0])) ||
      !std::isalpha(static_cast<unsigned char>(country[1])))
    return make_error(errc::invalid_input, "country '{}' is not a two-letter ISO code such as US or GB", query.country);
  query.country = country;
  if (query.area_code && !all_digits(*query.area_code))
    return make_error(errc::invalid_input, "area code '{}' must be digits", *query.area_code);
  if (query.contains && !all_digits(*query.contains))
    return make_error(errc::invalid_input, "--contains '{}' must be digits", *query.contains);
  if (query.limit < 1 || query.limit > 1000)
    return make_error(errc::invalid_input, "limit must be between 1 and 1000, got {}", query.limit);

  // Ask for more than the limit: some of what the provider offers may already be owned here.
  const int wanted = query.limit;
  query.limit = std::min(1000, wanted * 4 + 16);
  auto offered = provider_.search(query);
  if (!offered) return offered;
  std::vector<std::string> e164s;
  e164s.reserve(offered->size());
  for (const auto& n : *offered) e164s.push_back(n.e164);
  auto owned = store_.owned_managed(e164s);
  if (!owned) return std::move(owned).error();
  std::vector<available_number> out;
  for (auto& n : *offered) {
    if (static_cast<int>(out.size()) == wanted) break;
    if (!owned->contains(n.e164)) out.push_back(std::move(n));
  }
  return out;
}

result<phone_number> inventory_service::new_number(const std::string& e164_text, number_kind kind,
                                                   const std::string& provider, const number_limits& limits) {
  if (auto r = validate_limits(limits); !r) return std::move(r).error();
  auto parsed = parse_phone(e164_text, "US");
  if (!parsed) return std::move(parsed).error();
  phone_number n;
  n.e164 = parsed->e164;
  n.country = parsed->country;
  n.type = parsed->type;
  n.kind = kind;
  n.provider = provider;
  n.max_concurrent_calls = limits.max_concurrent_calls.value_or(1);
  n.max_cps = limits.max_cps.value_or(1.0);
  n.purchased_at = clock_.wall();
  return n;
}

result<phone_number> inventory_service::buy(const std::string& e164, const number_limits& limits) {
  auto n = new_number(e164, number_kind::managed, provider_.name(), limits);
  if (!n) return n;
  const std::string wanted[] = {n->e164};
  auto owned = store_.owned_managed(wanted);
  if (!owned) return std::move(owned).error();
  if (!owned->empty()) return make_error(errc::conflict, "number {} is already owned on this platform", n->e164);

  auto bought = provider_.buy(n->e164);
  if (!bought) return std::move(bought).error();
  n->type = bought->type;
  n->country = bought->country;
  auto fee = store_.monthly_fee(n->country, n->type);
  if (!fee) {
    (void)provider_.release(*bought);
    return std::move(fee).error();
  }
  n->monthly_fee = *fee;
  auto stored = store_.add_number(*n, bought->provider_ref);
  if (!stored) (void)provider_.release(*bought);  // lost a race with another buyer: give it back
  return stored;
}

number_provider* inventory_service::carrier_provider(std::string_view name) const {
  if (provider_.name() == name) return &provider_;
  return carrier_providers_ ? carrier_providers_(name) : nullptr;
}

result<phone_number> inventory_service::import_byoc(const std::string& e164, const std::string& provider,
                                                    const number_limits& limits, bool record_only) {
  if (std::find(std::begin(kByocProviders), std::end(kByocProviders), provider) == std::end(kByocProviders))
    return make_error(errc::invalid_input, "provider '{}' is not one of twilio, telnyx, sip", provider);
  auto n = new_number(e164, number_kind::byoc, provider, limits);
  if (!n) return n;
  // Already on the platform: refused before the carrier is touched (the store would refuse it after).
  if (auto existing = store_.find_number(n->e164); existing && existing->status == number_status::active)
    return make_error(errc::conflict, "number {} is already on this platform (id {})", n->e164, existing->id.value());
  std::string ref;
  if (provider != "sip" && !record_only) {
    auto* at = carrier_provider(provider);
    if (!at)
      return make_error(errc::invalid_input,
                        "this process holds no {} credentials to find {} in the account and point its calls here "
                        "(set DIALER_{}_...), or record it only (--record-only; API: \"record_only\": true) and point "
                        "its voice webhook at /v1/inbound/{} yourself",
                        provider, n->e164, provider == "twilio" ? "TWILIO" : "TELNYX", provider);
    auto claimed = at->claim(n->e164);
    if (!claimed) return std::move(claimed).error();
    ref = claimed->provider_ref;
  }
  return store_.add_number(*n, ref);
}

result<phone_number> inventory_service::assign(const std::string& number, const std::string& agent_ref,
                                               bool reassign) {
  auto n = resolve_number(number);
  if (!n) return n;
  auto a = resolve_agent(agent_ref);
  if (!a) return std::move(a).error();
  return store_.assign(n->id, a->id, reassign);
}

result<phone_number> inventory_service::unassign(const std::string& number) {
  auto n = resolve_number(number);
  if (!n) return n;
  return store_.unassign(n->id);
}

result<phone_number> inventory_service::release(const std::string& number) {
  auto n = resolve_number(number);
  if (!n) return n;
  auto ref = store_.provider_ref(n->id);
  if (!ref) return std::move(ref).error();
  // The database first: billing stops the moment the row says released.
  auto released = store_.release(n->id);
  if (!released) return released;
  if (released->kind == number_kind::managed) {
    auto* at = carrier_provider(released->provider);
    if (!at)
      return make_error(errc::unavailable,
                        "number {} is released here, but this process holds no {} credentials to release it there: "
                        "release it in the {} account",
                        released->e164, released->provider, released->provider);
    purchased_number p{released->e164, released->country, released->type, released->provider, *ref};
    if (auto r = at->release(p); !r)
      return make_error(errc::unavailable, "number {} is released here, but {} did not confirm the release: {}",
                        released->e164, released->provider, r.error().message);
  }
  return released;
}

result<std::vector<phone_number>> inventory_service::list(const std::optional<std::string>& agent_ref,
                                                          bool include_released) {
  std::optional<agent_id> filter;
  if (agent_ref) {
    auto a = resolve_agent(*agent_ref);
    if (!a) return std::move(a).error();
    filter = a->id;
  }
  return store_.list_numbers(filter, include_released);
}

result<std::vector<billing_line>> inventory_service::billing(const billing_period& period) {
  if (period.to < period.from) return make_error(errc::invalid_input, "billing period ends before it starts");
  const timestamp from = period.from;
  const timestamp to = period.to + date::days{1};
  auto numbers = store_.numbers_active_between(from, to);
  if (!numbers) return std::move(numbers).error();
  auto lines = number_fee_lines(*numbers, period);
  auto usage = store_.call_usage_between(from, to);
  if (!usage) return std::move(usage).error();
  auto ai_rate = store_.per_minute_rate("ai_minutes");
  if (!ai_rate) return std::move(ai_rate).error();
  for (auto& l : call_usage_lines(*usage, period, *ai_rate)) lines.push_back(std::move(l));
  return lines;
}

}  // namespace dialer
