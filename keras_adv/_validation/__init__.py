"""Validation: the one home of every argument and data check.

Every public entry point validates through these functions, so a class
of bad input is refused the same way wherever it enters (issue: "nothing
passes silently"). One module per subject: `_arguments` (constructor and
call arguments), `_inputs` (inputs and value ranges), `_labels` (labels
and targets), `_answers` (generator outputs, black-box answers); each
host-side check has an in-graph twin for data already inside a graph.
`docs/reliability.md` lists each check and its callers.
"""

from keras_adv._validation._answers import _expected_answers  # noqa: F401
from keras_adv._validation._answers import answer_assertions  # noqa: F401
from keras_adv._validation._answers import check_answers  # noqa: F401
from keras_adv._validation._answers import check_generator_output  # noqa: F401
from keras_adv._validation._arguments import _check_float_dtype  # noqa: F401
from keras_adv._validation._arguments import _is_number  # noqa: F401
from keras_adv._validation._arguments import check_bool  # noqa: F401
from keras_adv._validation._arguments import check_choice  # noqa: F401
from keras_adv._validation._arguments import check_eps  # noqa: F401
from keras_adv._validation._arguments import check_int  # noqa: F401
from keras_adv._validation._arguments import check_log_dir  # noqa: F401
from keras_adv._validation._arguments import check_number  # noqa: F401
from keras_adv._validation._arguments import check_value_range  # noqa: F401
from keras_adv._validation._arguments import check_verbose  # noqa: F401
from keras_adv._validation._arguments import invalid  # noqa: F401
from keras_adv._validation._arguments import is_variable  # noqa: F401
from keras_adv._validation._inputs import after_checks  # noqa: F401
from keras_adv._validation._inputs import check_same_length  # noqa: F401
from keras_adv._validation._inputs import check_summary  # noqa: F401
from keras_adv._validation._inputs import check_value_range_of  # noqa: F401
from keras_adv._validation._inputs import check_x  # noqa: F401
from keras_adv._validation._inputs import check_x_dtype  # noqa: F401
from keras_adv._validation._inputs import input_assertions  # noqa: F401
from keras_adv._validation._inputs import value_range_assertions  # noqa: F401
from keras_adv._validation._inputs import value_summary  # noqa: F401
from keras_adv._validation._labels import _label_span  # noqa: F401
from keras_adv._validation._labels import check_classes  # noqa: F401
from keras_adv._validation._labels import check_label_dtype  # noqa: F401
from keras_adv._validation._labels import check_label_shape  # noqa: F401
from keras_adv._validation._labels import check_label_values  # noqa: F401
from keras_adv._validation._labels import class_ids  # noqa: F401
from keras_adv._validation._labels import label_assertions  # noqa: F401
