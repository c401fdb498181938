// placeholder until the page is written
import { route } from '../core.js';
