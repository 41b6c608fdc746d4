package hyperliquid

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/derivatives-exporter/derivatives_exporter/exchanges"
)

// Quote is the quote (and margin) asset of every Hyperliquid perpetual.
const Quote = "USDC"

// metaAndAssetCtxs is the answer to {"type":"metaAndAssetCtxs"}: a two
// element array [meta, ctxs] where ctxs[i] belongs to meta.universe[i]
// (documented). Decoding fails when the answer does not have that shape or
// the two lists differ in length; unusable numbers inside a context do not
// fail it (see number).
type metaAndAssetCtxs struct {
	Universe []universeEntry
	Ctxs     []assetCtx
}

// universeEntry is one perp of meta.universe. The documented fields are
// name, szDecimals, maxLeverage and onlyIsolated; only name is needed.
// IsDelisted is absent on listed perps and true on delisted ones, which
// stay in the universe so the context indices do not move (seen in
// third-party code, not in the reference: UNVERIFIED).
type universeEntry struct {
	Name       string `json:"name"`
	IsDelisted bool   `json:"isDelisted"`
}

// assetCtx is the part of a perp asset context the exporter uses. The SDK
// types every field as a decimal string (midPx and impactPxs may be null).
// The keys differ in more than case, so encoding/json's case-insensitive
// matching cannot confuse them.
type assetCtx struct {
	Funding      number `json:"funding"`      // hourly rate
	OpenInterest number `json:"openInterest"` // base coin (venue units: kPEPE)
	DayNtlVlm    number `json:"dayNtlVlm"`    // 24 h notional in USDC
	MarkPx       number `json:"markPx"`       // USDC per venue unit
}

// number is a field that never fails the decoding of the whole answer.
type number = exchanges.LenientNumber

// errShape is wrapped by every decoding error of the answer's structure.
var errShape = errors.New("not the documented [meta, assetCtxs] shape")

// UnmarshalJSON implements json.Unmarshaler.
func (r *metaAndAssetCtxs) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("%w: %w", errShape, err)
	}
	if len(parts) != 2 {
		return fmt.Errorf("%w: top-level array has %d elements, want 2", errShape, len(parts))
	}
	var meta struct {
		Universe *[]universeEntry `json:"universe"`
	}
	if err := json.Unmarshal(parts[0], &meta); err != nil {
		return fmt.Errorf("%w: meta: %w", errShape, err)
	}
	if meta.Universe == nil {
		return fmt.Errorf("%w: meta has no universe", errShape)
	}
	var ctxs []assetCtx
	if err := json.Unmarshal(parts[1], &ctxs); err != nil {
		return fmt.Errorf("%w: asset contexts: %w", errShape, err)
	}
	if len(*meta.Universe) == 0 {
		return fmt.Errorf("%w: empty universe", errShape)
	}
	if len(ctxs) != len(*meta.Universe) {
		return fmt.Errorf("%w: %d universe entries but %d asset contexts", errShape, len(*meta.Universe), len(ctxs))
	}
	r.Universe, r.Ctxs = *meta.Universe, ctxs
	return nil
}

// asset is one collected instrument with its context of this poll.
type asset struct {
	inst *exchanges.Instrument
	ctx  assetCtx
}

// instrumentsFrom pairs every usable universe entry with its context:
// listed (not delisted), named, not a HIP-3 builder-dex name ("dex:COIN",
// which the reference documents for builder dexes, not for the main perp
// universe), not a repeat of an earlier name, and allowed by the coin
// allowlist. skipped counts unusable entries (delisted and allowlist
// exclusions are not counted). The order is the universe's.
func (v *Venue) instrumentsFrom(r *metaAndAssetCtxs) (out []asset, skipped int) {
	seen := make(map[string]bool, len(r.Universe))
	for i, u := range r.Universe {
		if u.IsDelisted {
			continue
		}
		if u.Name == "" || strings.ContainsAny(u.Name, ": ") || seen[u.Name] {
			skipped++
			continue
		}
		seen[u.Name] = true
		coin, mult := exchanges.NormalizeCoin(u.Name)
		if !v.coins.Allows(coin) {
			continue
		}
		out = append(out, asset{
			inst: &exchanges.Instrument{
				Exchange:     Name,
				Market:       exchanges.Linear,
				Symbol:       u.Name,
				Coin:         coin,
				Quote:        Quote,
				ContractType: exchanges.Perpetual,
				// Sizes are in venue units of the base coin; one kPEPE
				// is 1000 PEPE (UNVERIFIED, the reference, section 8).
				ContractSize:      1,
				Multiplier:        mult,
				NoLiquidationFeed: true, // no public liquidation feed
			},
			ctx: r.Ctxs[i],
		})
	}
	return out, skipped
}

// marketValues turns the contexts into gauges by the project's rules:
// mark price markPx; funding rate funding per hour (interval 3600 s, next
// funding the next top of the hour); open interest in coins openInterest x
// the name's multiplier (kPEPE: 1000), in USD openInterest x markPx; 24 h
// volume dayNtlVlm (USDC at par). A value that is unset, not finite, or
// negative where it cannot be (prices, open interest, volume) is skipped;
// bad counts the skipped values that were present but unusable.
func marketValues(assets []asset, now time.Time, ttl time.Duration) (out []exchanges.MarketValue, bad int) {
	out = make([]exchanges.MarketValue, 0, 7*len(assets))
	next := exchanges.NextBoundary(now, FundingInterval)
	for _, a := range assets {
		c := a.ctx
		var b int
		out, b = exchanges.AppendPerpValues(out, exchanges.PerpValues{Inst: a.inst, Mark: c.MarkPx, Funding: c.Funding,
			OpenInterest: c.OpenInterest, Volume24hUSD: c.DayNtlVlm}, FundingInterval, next, ttl)
		bad += b
	}
	return out, bad
}
