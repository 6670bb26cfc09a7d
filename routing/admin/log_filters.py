"""Request-log filters. None runs `SELECT DISTINCT` over the log: choices come from the small route tables or
are fixed, and every filter maps to an indexed condition."""

from datetime import UTC, datetime, timedelta

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from routing.console.stats import ERROR

MAX_PARAM_CHARS = 200  # a URL parameter longer than any name or id we store is refused, not queried


def choice_filter(field: str, title: str, choices) -> type[admin.SimpleListFilter]:
    """A filter on a plain column whose choices come from `choices()`, not from the (big) filtered table.
    A value from the URL that is not a current choice (a deleted group) is offered too, so it still applies."""

    def lookups(self, request, model_admin):
        listed = list(choices())
        current = self.value()
        return listed + [(current, current)] if current is not None and current not in dict(listed) else listed

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if len(value) > MAX_PARAM_CHARS or "\x00" in value:
            raise IncorrectLookupParameters(f"Bad {field} value.")
        return queryset.filter(**{field: value})

    return type(f"{field}_filter", (admin.SimpleListFilter,),
                {"title": title, "parameter_name": field, "lookups": lookups, "queryset": queryset})


def names(model, extra: tuple[str, ...] = ()):
    return lambda: [(n, n) for n in sorted({*extra, *model.objects.values_list("name", flat=True)})][:300]


class StatusFilter(admin.SimpleListFilter):
    """2xx/4xx/5xx classes, or an exact code from the URL (?status=429)."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("2xx", "2xx success"), ("4xx", "4xx client error"), ("429", "429 rate limited"),
                ("5xx", "5xx server/upstream error")]

    def queryset(self, request, queryset):
        value = self.value() or ""
        if len(value) == 3 and value.endswith("xx") and value[0].isdigit():
            low = int(value[0]) * 100
            return queryset.filter(status__gte=low, status__lt=low + 100)
        return queryset.filter(status=int(value)) if value.isdigit() and len(value) == 3 else queryset


class HasErrorFilter(admin.SimpleListFilter):
    """Status >= 400 or an error type (a stream that broke after its 200): the partial index's condition."""

    title = "has error"
    parameter_name = "has_error"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(ERROR)
        if self.value() == "no":
            return queryset.exclude(ERROR)
        return queryset


PRESETS = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1), "6h": timedelta(hours=6),
           "24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}


def parse_instant(text: str) -> datetime | None:
    """'2026-11-25 14:03', '2026-11-25T14:03:07', '2026-11-25' (UTC unless an offset is given); None if not."""
    text = text.strip()
    if not text or len(text) > 40 or "\x00" in text:
        return None
    try:
        value = parse_datetime(text.replace(" ", "T", 1))
        if value is None and (day := parse_date(text)) is not None:
            value = datetime(day.year, day.month, day.day)
    except ValueError:
        return None
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value


class TimeRangeFilter(admin.ListFilter):
    """?last=15m|1h|6h|24h|7d|30d, or ?since=…&until=… (either may be left out), on the created_at index."""

    title = "time range"
    template = "console/time_range_filter.html"
    parameters = ("last", "since", "until")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.values = {}
        for name in self.parameters:
            if name in params:
                raw = params.pop(name)
                self.values[name] = (raw[-1] if isinstance(raw, list) else raw)[:MAX_PARAM_CHARS]
        self.since, self.until = self._bounds()

    def _bounds(self) -> tuple[datetime | None, datetime | None]:
        last = self.values.get("last")
        if last:
            if last not in PRESETS:
                raise IncorrectLookupParameters("Unknown time range.")
            return timezone.now() - PRESETS[last], None
        since, until = (parse_instant(self.values.get(n, "")) for n in ("since", "until"))
        for name, parsed in (("since", since), ("until", until)):
            if self.values.get(name, "").strip() and parsed is None:
                raise IncorrectLookupParameters(f"'{name}' is not a date and time (YYYY-MM-DD HH:MM:SS).")
        return since, until

    def has_output(self) -> bool:
        return True

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        if self.since is not None:
            queryset = queryset.filter(created_at__gte=self.since)
        if self.until is not None:
            queryset = queryset.filter(created_at__lt=self.until)
        return queryset

    def choices(self, changelist):
        self.form = self.form_context(changelist)  # read by the template, which cannot pass arguments
        current = self.values.get("last")
        yield {"selected": not self.values, "display": "Any time",
               "query_string": changelist.get_query_string(remove=self.parameters)}
        for name in PRESETS:
            yield {"selected": current == name, "display": f"Last {name}",
                   "query_string": changelist.get_query_string({"last": name}, remove=["since", "until"])}

    def form_context(self, changelist) -> dict:
        """The since/until form: the other current parameters ride along as hidden inputs."""
        keep = {k: v for k, v in changelist.params.items() if k not in self.parameters and k != "p"}
        hidden = [(k, item) for k, v in keep.items() for item in (v if isinstance(v, list) else [v])]
        return {"since": self.values.get("since", ""), "until": self.values.get("until", ""), "hidden": hidden}
