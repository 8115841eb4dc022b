"""Building digests without I/O: one user's batch of entries -> the digest document(s) of DESIGN section 13.

Reviews are deduplicated per brand; the latest kind of a review wins (by occurrence time, then by push
order). Counts are exact; review ids are cut, evenly across brands, until the document fits the content
limit, and `truncated` says where. A batch whose counts alone do not fit (very many brands) is split by
brand into several documents with derived ids `<digest_id>.<n>`, deterministic so a retry yields the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from workers.common.contract.entries import Entry, Kind

SEPARATORS = (",", ":")

RENDER = """
local render, unsafe
do
  local dates = {}
  unsafe = '[^A-Za-z0-9%._:@%-]'
  local codes = {A = 1, U = 2, D = 3}
  local function rfc3339(ms)
    local text = dates[ms]
    if text then return text end
    local s = math.floor(ms / 1000)
    local days = math.floor(s / 86400)
    local secs = s - days * 86400
    local z = days + 719468
    local era = math.floor(z / 146097)
    local doe = z - era * 146097
    local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
    local mp = math.floor((5 * doy + 2) / 153)
    local day = doy - math.floor((153 * mp + 2) / 5) + 1
    local month = mp < 10 and mp + 3 or mp - 9
    local year = yoe + era * 400 + (month <= 2 and 1 or 0)
    text = string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', year, month, day, math.floor(secs / 3600),
                         math.floor(secs % 3600 / 60), secs % 60, ms - s * 1000)
    dates[ms] = text
    return text
  end
  local function bytewise(a, b)
    for i = 1, math.min(#a, #b) do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then return x < y end
    end
    return #a < #b
  end
  local function by_change(a, b)
    if a[2] ~= b[2] then return a[2] < b[2] end
    return a[3] < b[3]
  end
  local kinds = {A = '":{"added":1,"updated":0,"deleted":0,"review_ids":[',
                 U = '":{"added":0,"updated":1,"deleted":0,"review_ids":[',
                 D = '":{"added":0,"updated":0,"deleted":1,"review_ids":['}
  local singles = {}
  local function single(line, max_ids)
    local part = singles[line]
    if part ~= nil then return part end
    local brand, review, code, pushed = string.match(line, '^([^|]+)|([^|]+)|(%u)|(%d+)|%d+$')
    if not brand or not kinds[code] or string.find(brand .. review, unsafe) then
      part = false
    else
      local listed = max_ids > 0 and '"' .. review .. '"],"truncated":false}}}' or '],"truncated":true}}}'
      part = {rfc3339(tonumber(pushed)), '"},"total":1,"brands":{"' .. brand .. kinds[code] .. listed}
    end
    singles[line] = part
    return part
  end
  render = function(digest_id, stream, user, entries, end_ms, max_bytes, max_ids)
    if string.find(user, unsafe) then return false end
    if #entries == 1 then
      local part = single(entries[1], max_ids)
      if not part then return false end
      local content = '{"digest_id":"' .. digest_id .. '","stream":"' .. stream .. '","user":"' .. user ..
                      '","window":{"start":"' .. part[1] .. '","end":"' .. rfc3339(end_ms) .. part[2]
      if #content > max_bytes then return false end
      return content, 1, 1
    end
    local brands, names, distinct, start = {}, {}, {}, nil
    for order, line in ipairs(entries) do
      local brand, review, code, pushed, occurred = string.match(line, '^([^|]+)|([^|]+)|(%u)|(%d+)|(%d+)$')
      if not brand or not codes[code] or string.find(brand .. review, unsafe) then return false end
      pushed, occurred = tonumber(pushed), tonumber(occurred)
      if not start or pushed < start then start = pushed end
      local reviews = brands[brand]
      if not reviews then
        reviews = {seen = {}, list = {}}
        brands[brand] = reviews
        names[#names + 1] = brand
      end
      local seen = reviews.seen[review]
      if not seen then
        seen = {review, occurred, order, code}
        reviews.seen[review] = seen
        reviews.list[#reviews.list + 1] = seen
      elseif occurred >= seen[2] then
        seen[2], seen[3], seen[4] = occurred, order, code
      end
      distinct[review] = true
    end
    if not start then return false end
    if #names > 1 then table.sort(names, bytewise) end
    local total, most = 0, 0
    for _, brand in ipairs(names) do
      local n = #brands[brand].list
      total = total + n
      if n > most then most = n end
    end
    local cap = math.min(max_ids, most)
    local parts = {'{"digest_id":"', digest_id, '","stream":"', stream, '","user":"', user,
                   '","window":{"start":"', rfc3339(start), '","end":"', rfc3339(end_ms), '"},"total":', total,
                   ',"brands":{'}
    for at, brand in ipairs(names) do
      local list = brands[brand].list
      if #list > 1 then table.sort(list, by_change) end
      local counts = {0, 0, 0}
      for _, review in ipairs(list) do
        counts[codes[review[4]]] = counts[codes[review[4]]] + 1
      end
      parts[#parts + 1] = (at > 1 and ',"' or '"') .. brand .. '":{"added":' .. counts[1] .. ',"updated":' ..
                          counts[2] .. ',"deleted":' .. counts[3] .. ',"review_ids":['
      local ids = {}
      for i = math.max(#list - cap + 1, 1), #list do
        ids[#ids + 1] = '"' .. list[i][1] .. '"'
      end
      parts[#parts + 1] = table.concat(ids, ',')
      parts[#parts + 1] = #list > cap and '],"truncated":true}' or '],"truncated":false}'
    end
    parts[#parts + 1] = '}}'
    local content = table.concat(parts)
    if #content > max_bytes then return false end
    local unique = 0
    for _ in pairs(distinct) do unique = unique + 1 end
    return content, total, unique
  end
end
"""


@dataclass(frozen=True, slots=True)
class BrandTally:
    brand: str
    counts: dict[Kind, int]
    review_ids: list[str]

    @property
    def total(self) -> int:
        return len(self.review_ids)


@dataclass(frozen=True, slots=True)
class DigestDoc:
    digest_id: str
    content: bytes
    reviews: int


def rfc3339(unix_ms: int) -> str:
    return datetime.fromtimestamp(unix_ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def tally(entries: Iterable[Entry]) -> list[BrandTally]:
    """Per brand, each review once with its latest kind; brands sorted, ids in order of their latest change."""
    latest: dict[str, dict[str, tuple[int, int, Kind]]] = {}
    for order, entry in enumerate(entries):
        reviews = latest.setdefault(entry.brand, {})
        seen = reviews.get(entry.review)
        if seen is None or (entry.occurred_ms, order) >= (seen[0], seen[1]):
            reviews[entry.review] = (entry.occurred_ms, order, entry.kind)
    result = []
    for brand in sorted(latest):
        ordered = sorted(latest[brand].items(), key=lambda item: (item[1][0], item[1][1]))
        counts: dict[Kind, int] = {"added": 0, "updated": 0, "deleted": 0}
        for _, (_, _, kind) in ordered:
            counts[kind] += 1
        result.append(BrandTally(brand, counts, [review for review, _ in ordered]))
    return result


def build_digests(
    *,
    digest_id: str,
    stream: str,
    user: str,
    entries: Sequence[Entry],
    window_end_ms: int,
    max_bytes: int,
    max_ids_per_brand: int,
) -> list[DigestDoc]:
    """The digest document(s) for one user's batch; usually exactly one."""
    if not entries:
        return []
    header: dict[str, object] = {
        "stream": stream,
        "user": user,
        "window": {"start": rfc3339(min(e.pushed_ms for e in entries)), "end": rfc3339(window_end_ms)},
    }
    brands = tally(entries)
    cap = min(max_ids_per_brand, max(b.total for b in brands))
    whole = _render(brands, header=header, digest_id=digest_id, cap=cap)
    if len(whole) <= max_bytes:  # the usual case: everything fits, one rendering
        return [DigestDoc(digest_id, whole, sum(b.total for b in brands))]
    groups = _split_to_fit(brands, header=header, digest_id=digest_id, max_bytes=max_bytes)
    docs = []
    for index, group in enumerate(groups):
        part_id = digest_id if len(groups) == 1 else f"{digest_id}.{index + 1}"
        cap = _largest_cap(group, header=header, digest_id=part_id, max_bytes=max_bytes, ceiling=max_ids_per_brand)
        content = _render(group, header=header, digest_id=part_id, cap=cap)
        docs.append(DigestDoc(part_id, content, sum(b.total for b in group)))
    return docs


def _render(group: Sequence[BrandTally], *, header: dict[str, object], digest_id: str, cap: int) -> bytes:
    doc = {
        "digest_id": digest_id,
        **header,
        "total": sum(b.total for b in group),
        "brands": {
            b.brand: {
                **b.counts,
                "review_ids": b.review_ids[-cap:] if cap else [],
                "truncated": b.total > cap,
            }
            for b in group
        },
    }
    return json.dumps(doc, separators=SEPARATORS).encode()


def _largest_cap(
    group: Sequence[BrandTally], *, header: dict[str, object], digest_id: str, max_bytes: int, ceiling: int
) -> int:
    """The largest per-brand id count (<= ceiling) whose document fits; the newest ids are kept."""
    low, high = 0, min(ceiling, max(b.total for b in group))
    while low < high:
        middle = (low + high + 1) // 2
        if len(_render(group, header=header, digest_id=digest_id, cap=middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return low


def _split_to_fit(
    brands: list[BrandTally], *, header: dict[str, object], digest_id: str, max_bytes: int
) -> list[list[BrandTally]]:
    """Groups of brands whose count-only documents fit `max_bytes` (one group unless there are very many)."""
    probe_id = f"{digest_id}.{len(brands)}"
    groups: list[list[BrandTally]] = [[]]
    for brand in brands:
        candidate = [*groups[-1], brand]
        if groups[-1] and len(_render(candidate, header=header, digest_id=probe_id, cap=0)) > max_bytes:
            groups.append([brand])
        else:
            groups[-1] = candidate
    return groups
