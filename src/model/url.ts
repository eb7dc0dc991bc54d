// URL helpers shared by the analysis (verdict views) and the store (the domain column): pure,
// so in model/, the one layer both reach (docs/ARCHITECTURE.md).

/** The host of a URL, lowercased, IDNA-encoded; null when the input is not a URL. */
export function domainOf(input: string | null): string | null {
  return hostOf(parseUrl(input));
}

export function hostOf(u: URL | null): string | null {
  if (!u) return null;
  const h = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h || null;
}

export function parseUrl(input: string | null): URL | null {
  if (typeof input !== 'string' || input.length > 8192) return null;
  try {
    return new URL(input);
  } catch {
    return null;
  }
}
