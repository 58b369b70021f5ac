// Colours shared by the HTML (legends, table swatches) and the chart module that draws in the page.

/** Series colours, in order; past the end, line charts repeat them with a dash. */
export const PALETTE = [
  '#1971c2',
  '#e8590c',
  '#2f9e44',
  '#9c36b5',
  '#f08c00',
  '#0c8599',
  '#c2255c',
  '#5c940d',
  '#6741d9',
  '#868e96',
  '#a61e4d',
  '#087f5b',
];

/** One colour per benchmark engine, in the bars and in the model table's swatches. */
export const ENGINE_COLORS: Record<string, string> = {
  cnnlab: '#d9480f',
  'ort-webgpu': '#1971c2',
  'tfjs-webgpu': '#2f9e44',
  'ort-wasm': '#7048e8',
  'cnnlab-untuned': '#74c0fc',
  'ort-wasm-1t': '#b197fc',
  'litert-webgpu': '#f08c00',
  'litert-wasm': '#ffd43b',
};

/** Viridis stops: the heat map's colours and the gradient of its static legend. */
export const VIRIDIS = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];

/** Viridis at t in [0, 1], interpolated linearly between the stops, as 'rgb(r,g,b)'. */
export function viridis(t: number): string {
  const u = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(u));
  const rgb = (h: string) => [1, 3, 5].map((o) => parseInt(h.slice(o, o + 2), 16));
  const a = rgb(VIRIDIS[i]),
    b = rgb(VIRIDIS[i + 1]);
  return `rgb(${a.map((v, k) => Math.round(v + (b[k] - v) * (u - i))).join(',')})`;
}
