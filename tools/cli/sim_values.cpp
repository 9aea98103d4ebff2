#include "sim_values.hpp"

#include "util/time.hpp"
#include "workflow/form.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

namespace clinicflow::cli::sim {
namespace json = boost::json;
using workflow::FieldDef;
using workflow::FieldType;
using workflow::StepDef;

namespace {

constexpr int kCandidates = 64;           // candidate forms per choice on a step with steerable branches
constexpr double kBranchShare = 0.10;     // chance of aiming at one steerable branch ...
constexpr double kAllBranchesShare = 0.30;  // ... and at most this for all of a step's steerable branches
constexpr double kOmitOptional = 0.20;    // an optional field is left out this often
constexpr double kNearThreshold = 0.5;    // a field with hints takes a value at a threshold this often
constexpr int kSearchSteps = 256;         // single-field redraws when no candidate goes the wanted way

// The number and text literals of a condition, in order. Names (phq9, baseline.phq9) and
// keywords are skipped whole, so the 9 of phq9 is not a number.
void scan_literals(std::string_view text, std::vector<double>& numbers, std::vector<std::string>& strings) {
  std::size_t i = 0;
  char previous = '(';  // the last significant character before the current token
  while (i < text.size()) {
    char c = text[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_' || text[i] == '.')) ++i;
      previous = 'a';
      continue;
    }
    if (c == '"') {
      std::string s;
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) ++i;
        s += text[i];
      }
      ++i;
      strings.push_back(std::move(s));
      previous = 'a';
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      std::size_t start = i;
      while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
      double value = std::strtod(std::string(text.substr(start, i - start)).c_str(), nullptr);
      numbers.push_back(value);
      previous = 'a';
      continue;
    }
    // A '-' right after an operator, '(' '[' ',' or the start is a sign.
    if (c == '-' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1])) &&
        std::string_view("(<>=!,[+-*/").find(previous) != std::string_view::npos) {
      std::size_t start = ++i;
      while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
      numbers.push_back(-std::strtod(std::string(text.substr(start, i - start)).c_str(), nullptr));
      previous = 'a';
      continue;
    }
    previous = c;
    ++i;
  }
}

// A step that keeps about three significant digits over the span, so values read like an entry.
double grain(double lo, double hi) {
  double span = hi - lo;
  if (span <= 0) return 0;
  return std::pow(10.0, std::floor(std::log10(span)) - 2);
}

double round_to(double x, double step) { return step > 0 ? std::round(x / step) * step : x; }

std::string date_text(std::int64_t days) { return format_rfc3339(days * 86'400'000).substr(0, 10); }

}  // namespace

ValueChooser::ValueChooser(const workflow::Workflow& workflow, const Profile& profile, Random& random)
    : workflow_(workflow), profile_(profile), random_(random) {
  auto add = [this](const workflow::Condition& condition) {
    std::vector<double> numbers;
    std::vector<std::string> strings;
    scan_literals(condition.text(), numbers, strings);
    for (const auto& ref : condition.fields()) {
      Hints& h = hints_[ref.step + "." + ref.field];
      for (double n : numbers)
        if (std::find(h.numbers.begin(), h.numbers.end(), n) == h.numbers.end()) h.numbers.push_back(n);
      for (const auto& s : strings)
        if (std::find(h.strings.begin(), h.strings.end(), s) == h.strings.end()) h.strings.push_back(s);
    }
  };
  for (const auto& stage : workflow.stages)
    if (stage.repeat && stage.repeat->until) add(*stage.repeat->until);
  for (const auto& step : workflow.steps) {
    for (const auto& branch : step.branches)
      if (branch.when) add(*branch.when);
    if (step.next.when) add(*step.next.when);
    for (const auto& message : step.messages)
      if (message.when) add(*message.when);
  }
}

const ValueChooser::Hints* ValueChooser::hints_for(const StepDef& step, const FieldDef& field) const {
  auto it = hints_.find(step.id + "." + field.name);
  return it == hints_.end() ? nullptr : &it->second;
}

json::value ValueChooser::draw_profiled(const FieldDef& field, const FieldProfile& fp) {
  if (!fp.range) return fp.values[random_.weighted(fp.weights)];
  auto [lo, hi] = *fp.range;
  if (field.type == FieldType::integer)
    return random_.between(static_cast<std::int64_t>(std::ceil(lo)), static_cast<std::int64_t>(std::floor(hi)));
  return std::clamp(round_to(random_.between(lo, hi), grain(lo, hi)), lo, hi);
}

void ValueChooser::draw_natural(const StepDef& step, const FieldDef& field, TimePoint now, json::object& form) {
  if (!field.required && random_.chance(kOmitOptional)) return;
  const Hints* hints = hints_for(step, field);
  bool near = hints && random_.chance(kNearThreshold);
  switch (field.type) {
    case FieldType::boolean:
      form[field.name] = random_.chance(0.5);
      return;
    case FieldType::enumeration:
      form[field.name] = field.values[static_cast<std::size_t>(random_.between(std::int64_t{0}, static_cast<std::int64_t>(field.values.size()) - 1))];
      return;
    case FieldType::string:
      if (near && !hints->strings.empty())
        form[field.name] = hints->strings[static_cast<std::size_t>(random_.between(std::int64_t{0}, static_cast<std::int64_t>(hints->strings.size()) - 1))];
      else
        form[field.name] = "simulated " + field.name;
      return;
    case FieldType::integer:
    case FieldType::number: {
      // The span: the field's limits, else around the numbers the conditions use.
      bool have_numbers = hints && !hints->numbers.empty();
      double least = have_numbers ? *std::min_element(hints->numbers.begin(), hints->numbers.end()) : 0;
      double most = have_numbers ? *std::max_element(hints->numbers.begin(), hints->numbers.end()) : 0;
      double lo = field.min ? *field.min : field.max ? std::min(0.0, *field.max - 100) : std::min(0.0, least - 10);
      double hi = field.max ? *field.max : std::max(lo + 100, most + 10);
      if (field.type == FieldType::integer) {
        auto ilo = static_cast<std::int64_t>(std::ceil(lo)), ihi = static_cast<std::int64_t>(std::floor(hi));
        std::int64_t v;
        if (near && have_numbers) {
          double t = hints->numbers[static_cast<std::size_t>(random_.between(std::int64_t{0}, static_cast<std::int64_t>(hints->numbers.size()) - 1))];
          auto base = static_cast<std::int64_t>(std::floor(t));
          v = base + random_.between(std::int64_t{-1}, std::int64_t{2});  // floor-1 .. floor+2: both sides of t
        } else {
          v = random_.between(ilo, ihi);
        }
        form[field.name] = std::clamp(v, ilo, std::max(ilo, ihi));
      } else {
        double step_size = grain(lo, hi);
        double v;
        if (near && have_numbers) {
          double t = hints->numbers[static_cast<std::size_t>(random_.between(std::int64_t{0}, static_cast<std::int64_t>(hints->numbers.size()) - 1))];
          double d = std::max(step_size, 1e-6);
          v = t + static_cast<double>(random_.between(std::int64_t{-1}, std::int64_t{1})) * d;
        } else {
          v = round_to(random_.between(lo, hi), step_size);
        }
        form[field.name] = std::clamp(v, lo, std::max(lo, hi));
      }
      return;
    }
    case FieldType::date: {
      std::int64_t today = now / 86'400'000;
      std::vector<std::int64_t> days;
      if (near)
        for (const auto& s : hints->strings)
          if (auto d = parse_date(s)) days.push_back(*d);
      if (!days.empty())
        form[field.name] = date_text(days[static_cast<std::size_t>(random_.between(std::int64_t{0}, static_cast<std::int64_t>(days.size()) - 1))] +
                                     random_.between(std::int64_t{-1}, std::int64_t{1}));
      else
        form[field.name] = date_text(today - random_.between(std::int64_t{0}, std::int64_t{30}));
      return;
    }
    case FieldType::datetime: {
      std::vector<TimePoint> moments;
      if (near)
        for (const auto& s : hints->strings)
          if (auto t = parse_rfc3339(s)) moments.push_back(*t);
      TimePoint t;
      if (!moments.empty())
        t = moments[static_cast<std::size_t>(random_.between(std::int64_t{0}, static_cast<std::int64_t>(moments.size()) - 1))] +
            random_.between(std::int64_t{-1}, std::int64_t{1}) * 60'000;
      else
        t = now / 60'000 * 60'000 - random_.between(std::int64_t{0}, std::int64_t{48 * 60}) * 60'000;
      form[field.name] = format_rfc3339(t);
      return;
    }
  }
}

json::object ValueChooser::choose(const StepDef& step, const engine::CaseState& state, TimePoint now) {
  // The profiled fields are drawn once, so their weights hold exactly; steering varies the rest.
  json::object fixed;
  std::vector<const FieldDef*> free;
  for (const auto& field : step.fields) {
    if (const FieldProfile* fp = profile_.find(step.id, field.name)) fixed[field.name] = draw_profiled(field, *fp);
    else free.push_back(&field);
  }
  auto candidate = [&] {
    json::object form = fixed;
    for (const FieldDef* f : free) draw_natural(step, *f, now, form);
    return form;
  };

  std::vector<std::size_t> steerable;
  for (std::size_t i = 0; i < step.branches.size(); ++i) {
    const auto& when = step.branches[i].when;
    if (!when) continue;
    bool reads_free = std::any_of(when->fields().begin(), when->fields().end(), [&](const workflow::FieldRef& ref) {
      return ref.step == step.id && std::any_of(free.begin(), free.end(), [&](const FieldDef* f) { return f->name == ref.field; });
    });
    if (reads_free) steerable.push_back(i);
  }
  if (steerable.empty()) return candidate();

  // Which way a form would send the case: a branch index, -1 for the default transition, -2 for
  // a form the engine would not accept.
  auto route = [&](const json::object& form) -> int {
    json::object clean;
    if (!workflow::validate_form(step, form, clean).empty()) return -2;
    workflow::ValueLookup lookup = [&](const workflow::FieldRef& ref) -> const json::value* {
      if (ref.step == step.id) return clean.if_contains(ref.field);
      const json::value* data = state.data.if_contains(ref.step);
      return data && data->is_object() ? data->get_object().if_contains(ref.field) : nullptr;
    };
    for (std::size_t i = 0; i < step.branches.size(); ++i)
      if (step.branches[i].when && step.branches[i].when->evaluate(lookup)) return static_cast<int>(i);
    return -1;
  };
  auto is_steerable = [&](int t) { return t >= 0 && std::find(steerable.begin(), steerable.end(), static_cast<std::size_t>(t)) != steerable.end(); };
  // The free fields a branch's condition reads: what can be redrawn to change its answer.
  auto levers_of = [&](int branch, std::vector<const FieldDef*>& levers) {
    for (const auto& ref : step.branches[static_cast<std::size_t>(branch)].when->fields())
      for (const FieldDef* f : free)
        if (ref.step == step.id && f->name == ref.field && std::find(levers.begin(), levers.end(), f) == levers.end()) levers.push_back(f);
  };

  // A batch of independent candidates, and which way each would go.
  std::vector<json::object> forms;
  std::vector<int> taken;
  for (int k = 0; k < kCandidates; ++k) {
    json::object form = candidate();
    if (int t = route(form); t != -2) {
      forms.push_back(std::move(form));
      taken.push_back(t);
    }
  }
  if (forms.empty()) return candidate();  // let the engine say what is wrong

  // Finds a form going the wanted way (`branch`, or with branch < 0 any way no steerable branch
  // takes): first among the batch, else by redrawing, one at a time, the fields of the branch in
  // the way (with many exclusions, a batch rarely has a form that passes them all).
  auto find = [&](int branch) -> std::optional<json::object> {
    auto wanted = [&](int t) { return branch >= 0 ? t == branch : t != -2 && !is_steerable(t); };
    for (std::size_t k = 0; k < forms.size(); ++k)
      if (wanted(taken[k])) return forms[k];
    json::object form = forms.front();
    for (int i = 0; i < kSearchSteps; ++i) {
      int t = route(form);
      if (wanted(t)) return form;
      std::vector<const FieldDef*> levers;
      if (t >= 0 && is_steerable(t)) levers_of(t, levers);  // the branch taken instead
      if (branch >= 0) levers_of(branch, levers);             // the branch wanted
      if (levers.empty()) return std::nullopt;
      const FieldDef* f = levers[static_cast<std::size_t>(random_.between(std::int64_t{0}, static_cast<std::int64_t>(levers.size()) - 1))];
      form.erase(f->name);
      draw_natural(step, *f, now, form);
    }
    return std::nullopt;
  };

  // Aim: one steerable branch, or the way no steerable branch goes.
  double share = std::min(kBranchShare, kAllBranchesShare / static_cast<double>(steerable.size()));
  std::vector<double> weights(steerable.size(), share);
  weights.push_back(1.0 - share * static_cast<double>(steerable.size()));
  std::size_t aim = random_.weighted(weights);
  if (aim < steerable.size())
    if (auto form = find(static_cast<int>(steerable[aim]))) return *form;
  if (auto form = find(-1)) return *form;
  // Every form takes a steerable branch: choose evenly among the branches that occur.
  std::vector<int> occurring;
  for (int t : taken)
    if (std::find(occurring.begin(), occurring.end(), t) == occurring.end()) occurring.push_back(t);
  std::sort(occurring.begin(), occurring.end());
  int pick = occurring[static_cast<std::size_t>(random_.between(std::int64_t{0}, static_cast<std::int64_t>(occurring.size()) - 1))];
  return forms[static_cast<std::size_t>(std::find(taken.begin(), taken.end(), pick) - taken.begin())];
}

}  // namespace clinicflow::cli::sim
