/** One distinct colour per category, the same on every screen of a project. */

// Tableau 10: distinct hues that stay apart for colour-blind viewers better than a hue wheel.
const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
  "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
];

/** The colour of a category id: by the category's place in the project's list. */
export function categoryColor(categories, categoryId) {
  const index = categories.findIndex((category) => category.id === categoryId);
  return PALETTE[(index < 0 ? categoryId : index) % PALETTE.length];
}

export function categoryName(categories, categoryId) {
  return categories.find((category) => category.id === categoryId)?.name ?? `class ${categoryId}`;
}

/** Black or white, whichever reads better on `hex`. */
export function inkOn(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111" : "#fff";
}

export function rgbOf(hex) {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}
