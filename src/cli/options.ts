/** Commander argument parsers that refuse bad values with the flag's expectation (defined with the option tables). */
export { intList, nonNegativeInt, nonNegativeNumber, oneOf, positiveInt, positiveNumber } from '../config/options/parsers.js';
