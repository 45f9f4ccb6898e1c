//! proto ⇄ domain conversions (placeholder)
