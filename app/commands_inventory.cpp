// dialer agents ..., numbers ..., billing: the phone-number inventory.
#include <date/date.h>

#include "adapters/postgres/inventory_store.hpp"
#include "app/commands.hpp"
#include "app/output.hpp"
#include "engine/inventory.hpp"

namespace dialer::app {
namespace {

// Everything a command needs: connection, store, provider and the service over them.
struct inventory_session {
  context ctx;
  std::unique_ptr<pg::pg_inventory_store> store;
  std::unique_ptr<number_providers> providers;
  system_clock clk;
  std::unique_ptr<inventory_service> service;
};

result<std::unique_ptr<inventory_session>> open_session(const global_options& options) {
  auto p = number_providers::from_environment();
  if (!p) return std::move(p).error();
  auto c = context::open(options);
  if (!c) return std::move(c).error();
  auto s = std::make_unique<inventory_session>(inventory_session{std::move(*c), nullptr, std::move(*p), {}, nullptr});
  s->store = std::make_unique<pg::pg_inventory_store>(s->ctx.db(), s->ctx.account());
  s->service = std::make_unique<inventory_service>(*s->store, s->providers->buying(), s->clk);
  s->providers->wire(*s->service);
  return s;
}

// Runs `body` with an open session; turns every error into its message and exit code.
template <class Body>
int with_session(const global_options& options, Body body) {
  auto session = open_session(options);
  if (!session) return report(session.error());
  return body(*session.value()->service);
}

std::string agent_cell(const phone_number& n) {
  return n.agent ? fmt::format("{} ({})", n.agent_name, n.agent.value()) : "-";
}

void print_numbers(const global_options& options, const std::vector<phone_number>& numbers) {
  if (options.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& n : numbers) list.push_back(to_json(n));
    print_json(list);
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& n : numbers)
    rows.push_back({std::to_string(n.id.value()), n.e164, n.country, std::string(to_string(n.type)),
                    std::string(to_string(n.kind)), n.provider, std::to_string(n.max_concurrent_calls),
                    fmt::format("{:g}", n.max_cps), std::string(to_string(n.status)), agent_cell(n)});
  print_table({"ID", "E164", "COUNTRY", "TYPE", "KIND", "PROVIDER", "MAX_CONC", "MAX_CPS", "STATUS", "AGENT"}, rows);
}

int print_number(const global_options& options, const result<phone_number>& n, std::string_view verb) {
  if (!n) return report(n.error());
  if (options.json) {
    print_json(to_json(*n));
  } else {
    fmt::print("{} number {} (id {}): {} {} {}, {}", verb, n->e164, n->id.value(), n->country, to_string(n->type),
               to_string(n->kind), to_string(n->status));
    if (n->agent) fmt::print(", agent '{}'", n->agent_name);
    fmt::print("\n");
  }
  return exit_ok;
}

result<date::sys_days> parse_day(const std::string& text, const char* flag) {
  auto d = parse_calendar_day(text);
  if (!d) return make_error(errc::invalid_input, "{} {}", flag, d.error().message);
  return d;
}

struct number_options {
  std::optional<int> max_concurrent;
  std::optional<double> max_cps;
  void add_to(CLI::App* cmd) {
    cmd->add_option("--max-concurrent", max_concurrent, "Most calls in flight on this number at once (default 1)");
    cmd->add_option("--max-cps", max_cps, "Most call originations per second from this number (default 1)");
  }
  [[nodiscard]] number_limits limits() const { return {max_concurrent, max_cps}; }
};

}  // namespace

void add_inventory_commands(CLI::App& app, global_options& options, command_action& run) {
  // agents
  auto* agents = app.add_subcommand("agents", "Voice AI agents");
  agents->require_subcommand(1);
  {
    auto* create = agents->add_subcommand("create", "Create an agent");
    auto name = std::make_shared<std::string>();
    auto handoff = std::make_shared<std::string>();
    create->add_option("NAME", *name, "Agent name")->required();
    create->add_option("--handoff", *handoff, "Where its calls connect: a media-stream URL or a SIP URI");
    create->callback([&options, &run, name, handoff] {
      run = [&options, name, handoff] {
        return with_session(options, [&](inventory_service& s) {
          auto a = s.create_agent(*name, *handoff);
          if (!a) return report(a.error());
          if (options.json)
            print_json(to_json(*a));
          else
            fmt::print("created agent '{}' (id {})\n", a->name, a->id.value());
          return int{exit_ok};
        });
      };
    });
    agents->add_subcommand("list", "List agents")->callback([&options, &run] {
      run = [&options] {
        return with_session(options, [&](inventory_service& s) {
          auto list = s.list_agents();
          if (!list) return report(list.error());
          if (options.json) {
            nlohmann::json out = nlohmann::json::array();
            for (const auto& a : *list) out.push_back(to_json(a));
            print_json(out);
          } else {
            std::vector<std::vector<std::string>> rows;
            for (const auto& a : *list)
              rows.push_back({std::to_string(a.id.value()), a.name, a.handoff.empty() ? "-" : a.handoff});
            print_table({"ID", "NAME", "HANDOFF"}, rows);
          }
          return int{exit_ok};
        });
      };
    });
  }

  // numbers
  auto* numbers = app.add_subcommand("numbers", "Phone numbers: search, buy, import, assign, release");
  numbers->require_subcommand(1);
  {
    auto* search = numbers->add_subcommand("search", "Search the provider's available numbers");
    auto q = std::make_shared<number_search>();
    auto type = std::make_shared<std::string>();
    auto area = std::make_shared<std::string>();
    auto contains = std::make_shared<std::string>();
    search->add_option("--country", q->country, "ISO country code, e.g. US")->required();
    search->add_option("--type", *type, "local, toll_free or mobile");
    search->add_option("--area-code", *area, "Area code (national destination code), e.g. 415");
    search->add_option("--contains", *contains, "Digits the number must contain");
    search->add_option("--limit", q->limit, "At most this many results (default 20)");
    search->callback([&options, &run, q, type, area, contains] {
      run = [&options, q, type, area, contains] {
        if (!type->empty()) {
          q->type = parse_number_type(*type);
          if (!q->type)
            return report(make_error(errc::invalid_input, "--type '{}' is not one of local, toll_free, mobile", *type));
        }
        if (!area->empty()) q->area_code = *area;
        if (!contains->empty()) q->contains = *contains;
        return with_session(options, [&](inventory_service& s) {
          auto found = s.search(*q);
          if (!found) return report(found.error());
          if (options.json) {
            nlohmann::json out = nlohmann::json::array();
            for (const auto& n : *found) out.push_back(to_json(n));
            print_json(out);
          } else {
            std::vector<std::vector<std::string>> rows;
            for (const auto& n : *found)
              rows.push_back({n.e164, n.country, std::string(to_string(n.type)), n.region.empty() ? "-" : n.region,
                              n.provider});
            print_table({"E164", "COUNTRY", "TYPE", "REGION", "PROVIDER"}, rows);
          }
          return int{exit_ok};
        });
      };
    });

    auto* buy = numbers->add_subcommand("buy", "Buy a number from the provider's inventory");
    auto buy_e164 = std::make_shared<std::string>();
    auto buy_limits = std::make_shared<number_options>();
    buy->add_option("E164", *buy_e164, "The number, e.g. +14155550123")->required();
    buy_limits->add_to(buy);
    buy->callback([&options, &run, buy_e164, buy_limits] {
      run = [&options, buy_e164, buy_limits] {
        return with_session(options, [&](inventory_service& s) {
          return print_number(options, s.buy(*buy_e164, buy_limits->limits()), "bought");
        });
      };
    });

    auto* import = numbers->add_subcommand(
        "import", "Bring a number the customer owns elsewhere (BYOC): found in the carrier account and pointed here");
    auto import_e164 = std::make_shared<std::string>();
    auto import_provider = std::make_shared<std::string>();
    auto import_limits = std::make_shared<number_options>();
    auto record_only = std::make_shared<bool>(false);
    import->add_option("E164", *import_e164, "The number, e.g. +14155550123")->required();
    import->add_option("--provider", *import_provider, "twilio, telnyx or sip")->required();
    import->add_flag("--record-only", *record_only,
                     "Record it without asking the carrier (point its voice webhook at /v1/inbound/<provider> yourself)");
    import_limits->add_to(import);
    import->callback([&options, &run, import_e164, import_provider, import_limits, record_only] {
      run = [&options, import_e164, import_provider, import_limits, record_only] {
        return with_session(options, [&](inventory_service& s) {
          return print_number(
              options, s.import_byoc(*import_e164, *import_provider, import_limits->limits(), *record_only),
              "imported");
        });
      };
    });

    auto* assign = numbers->add_subcommand("assign", "Assign a number to an agent");
    auto assign_number = std::make_shared<std::string>();
    auto assign_agent = std::make_shared<std::string>();
    auto reassign = std::make_shared<bool>(false);
    assign->add_option("NUMBER", *assign_number, "Number id or E.164")->required();
    assign->add_option("--agent", *assign_agent, "Agent id or name")->required();
    assign->add_flag("--reassign", *reassign, "Move the number even if another agent holds it");
    assign->callback([&options, &run, assign_number, assign_agent, reassign] {
      run = [&options, assign_number, assign_agent, reassign] {
        return with_session(options, [&](inventory_service& s) {
          return print_number(options, s.assign(*assign_number, *assign_agent, *reassign), "assigned");
        });
      };
    });

    auto* unassign = numbers->add_subcommand("unassign", "Take a number away from its agent");
    auto unassign_number = std::make_shared<std::string>();
    unassign->add_option("NUMBER", *unassign_number, "Number id or E.164")->required();
    unassign->callback([&options, &run, unassign_number] {
      run = [&options, unassign_number] {
        return with_session(options, [&](inventory_service& s) {
          return print_number(options, s.unassign(*unassign_number), "unassigned");
        });
      };
    });

    auto* release = numbers->add_subcommand("release", "Release a number: billing stops at once");
    auto release_number = std::make_shared<std::string>();
    release->add_option("NUMBER", *release_number, "Number id or E.164")->required();
    release->callback([&options, &run, release_number] {
      run = [&options, release_number] {
        return with_session(options, [&](inventory_service& s) {
          return print_number(options, s.release(*release_number), "released");
        });
      };
    });

    auto* list = numbers->add_subcommand("list", "List the account's numbers");
    auto list_agent = std::make_shared<std::string>();
    auto list_all = std::make_shared<bool>(false);
    list->add_option("--agent", *list_agent, "Only this agent's numbers (id or name)");
    list->add_flag("--all", *list_all, "Include released numbers");
    list->callback([&options, &run, list_agent, list_all] {
      run = [&options, list_agent, list_all] {
        return with_session(options, [&](inventory_service& s) {
          auto found = s.list(list_agent->empty() ? std::nullopt : std::optional<std::string>(*list_agent), *list_all);
          if (!found) return report(found.error());
          print_numbers(options, *found);
          return int{exit_ok};
        });
      };
    });
  }

  // billing
  auto* billing = app.add_subcommand("billing", "Billing line items for a period");
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  billing->add_option("--from", *from, "First day, YYYY-MM-DD (default: first day of this month, UTC)");
  billing->add_option("--to", *to, "Last day, YYYY-MM-DD, inclusive (default: today, UTC)");
  billing->callback([&options, &run, from, to] {
    run = [&options, from, to] {
      const auto today = date::floor<date::days>(std::chrono::system_clock::now());
      const date::year_month_day ymd{today};
      billing_period period{date::sys_days{ymd.year() / ymd.month() / 1}, today};
      if (!from->empty()) {
        auto d = parse_day(*from, "--from");
        if (!d) return report(d.error());
        period.from = *d;
      }
      if (!to->empty()) {
        auto d = parse_day(*to, "--to");
        if (!d) return report(d.error());
        period.to = *d;
      }
      return with_session(options, [&](inventory_service& s) {
        auto lines = s.billing(period);
        if (!lines) return report(lines.error());
        if (options.json) {
          nlohmann::json items = nlohmann::json::array();
          for (const auto& l : *lines) items.push_back(to_json(l));
          print_json({{"from", date::format("%F", period.from)},
                      {"to", date::format("%F", period.to)},
                      {"currency", "USD"},
                      {"lines", items},
                      {"total", format_money(total(*lines))}});
        } else {
          fmt::print("billing {} to {} (USD)\n", date::format("%F", period.from), date::format("%F", period.to));
          std::vector<std::vector<std::string>> rows;
          for (const auto& l : *lines)
            rows.push_back({l.item, l.e164, date::format("%F", l.from), date::format("%F", l.to), l.description,
                            format_money(l.amount)});
          print_table({"ITEM", "NUMBER", "FROM", "TO", "DETAIL", "AMOUNT"}, rows);
          fmt::print("total: {}\n", format_money(total(*lines)));
        }
        return int{exit_ok};
      });
    };
  });
}

}  // namespace dialer::app
